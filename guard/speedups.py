"""Whether the clean path's checks run as C (`guard/_speedups.c`) or as their Python definitions.

The C versions are used when the package was built with a C compiler, unless
PRIVACY_GUARD_SPEEDUPS=off: read once, when `guard` is imported, for the whole process. That is
the operator's way to take the compiled code out of the request path without reinstalling, and
the test suite's way to run every test on the Python definitions. `GuardConfig.from_env` checks
the value with the other variables; an unusable one stops start-up there.
"""

from __future__ import annotations

import os

__all__ = ["ACCEPTED", "VARIABLE", "compiled"]

VARIABLE = "PRIVACY_GUARD_SPEEDUPS"
ACCEPTED = ("on", "off")

try:
    if os.environ.get(VARIABLE, "on").strip().lower() == "off":
        raise ImportError(f"{VARIABLE}=off")
    from . import _speedups as compiled
except ImportError:  # not built (no C compiler at install time), or turned off
    compiled = None  # type: ignore[assignment]
