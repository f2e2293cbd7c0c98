"""privacy-guard: keep carrier-injected subscriber identifiers away from ASGI applications."""

from .config import ConfigError, GuardConfig
from .detect import Finding
from .middleware import PrivacyGuard, __version__

__all__ = ["ConfigError", "Finding", "GuardConfig", "PrivacyGuard", "__version__"]
