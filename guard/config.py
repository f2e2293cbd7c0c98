"""Configuration: one frozen `GuardConfig`, read from `PRIVACY_GUARD_*` variables or arguments.

A security component must not start weaker than its operator asked for. Every value is
validated, a typo in a variable's name is an error (with the closest known name), and the error
names the variable and what it accepts — never a value that could be a secret or an identifier.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import ipaddress
import os
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import phonenumbers

from . import speedups
from .catalog import fold

__all__ = ["ENV_PREFIX", "ConfigError", "GuardConfig", "port_number"]

ENV_PREFIX = "PRIVACY_GUARD_"

MODES = ("strip", "report")
SCAN_VALUES = ("strip", "report", "off")
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("json", "console")
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}")  # RFC 9110 field-name token
_PATH = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@/%]{0,255}")
# A DNS name: dot-separated labels of 1-63 letters, digits and inner hyphens, 253 at most.
_HOST = re.compile(
    r"(?=.{1,253}\Z)(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
)


def port_number(text: str) -> int | None:
    """`text` as a TCP port, 1-65535, or None: ASCII digits only, never more than five of them
    (`int()` would take `٩٤٦٤`, or raise on 5,000 digits)."""
    if text.isascii() and text.isdigit() and len(text) <= 5 and 1 <= int(text) <= 65535:
        return int(text)
    return None


class ConfigError(ValueError):
    """A configuration value the guard cannot run with. Names the variable and what it accepts."""

    def __init__(self, variable: str, problem: str, accepted: str) -> None:
        self.variable = variable
        self.problem = problem
        self.accepted = accepted
        super().__init__(f"{variable}: {problem}; accepts {accepted}")


@dataclass(frozen=True)
class GuardConfig:
    """Everything the guard can be told. Arguments are validated exactly like the environment."""

    mode: str = "strip"
    extra_headers: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    scan_values: str = "strip"
    default_region: str | None = None
    metrics: bool = True
    metrics_path: str | None = None
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    log_level: str = "info"
    log_format: str = "json"
    pseudonym_key: bytes | None = field(default=None, repr=False)
    pseudonym_key_previous: bytes | None = field(default=None, repr=False)
    check_path: str | None = None
    trusted_sources: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    trusted_paths: tuple[str, ...] = ()
    trusted_headers: tuple[str, ...] = ()
    # Not settable from the environment: the per-request cost bound of the value rules.
    scan_budget: int = field(default=32, metadata={"env": False})
    scan_bytes: int = field(default=64 * 1024, metadata={"env": False})

    def __post_init__(self) -> None:
        for name, value in _validated(self).items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GuardConfig:
        """Read every `PRIVACY_GUARD_*` variable; unknown ones are errors, not ignored."""
        environ = os.environ if environ is None else environ
        known = {_variable(f.name): f.name for f in fields(cls) if f.metadata.get("env", True)}
        values: dict[str, Any] = {}
        for variable, raw in environ.items():
            if not variable.startswith(ENV_PREFIX):
                continue
            if variable == speedups.VARIABLE:  # read at import, for the process (see there)
                _choice("speedups", raw, speedups.ACCEPTED)
                continue
            if variable not in known:
                close = difflib.get_close_matches(variable, known, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]}?" if close else "no such setting"
                raise ConfigError(variable, f"unknown variable ({hint})", ", ".join(sorted(known)))
            try:
                values[known[variable]] = _parse(known[variable], raw)
            except ConfigError as exc:
                raise _empty(exc, raw) from None
        try:
            return cls(**values)
        except ConfigError as exc:
            raise _empty(exc, environ.get(exc.variable)) from None


# Settings with a default and no meaning for empty (an empty path, port or list means "none").
_NOT_EMPTY = frozenset(
    {"mode", "scan_values", "metrics", "metrics_host", "log_level", "log_format"}
)


def _empty(exc: ConfigError, raw: str | None) -> ConfigError:
    """Say so when the refused value is empty — often a template variable that expanded to
    nothing — and what unsetting it would give. Empty is not taken as the default: the operator
    meant something, and a guard must not guess what."""
    name = exc.variable.removeprefix(ENV_PREFIX).lower()
    if raw is None or raw.strip() or name not in _NOT_EMPTY:
        return exc
    default = next((f.default for f in fields(GuardConfig) if f.name == name), None)
    if isinstance(default, bool):
        default = str(default).lower()
    return ConfigError(exc.variable, f"empty (unset it for the default, {default})", exc.accepted)


def _variable(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def _parse(name: str, raw: str) -> Any:
    """Environment text to the field's type; validation proper happens in `_validated`."""
    text = raw.strip()
    if name in ("extra_headers", "allow_headers", "trusted_headers", "trusted_sources"):
        return tuple(item.strip() for item in text.split(",") if item.strip())
    if name == "trusted_paths":
        return tuple(item.strip() for item in text.split(",") if item.strip())
    if name == "metrics":
        lowered = text.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigError(_variable(name), "not a boolean", "true/false/1/0/yes/no/on/off")
    if name == "metrics_port":
        if not text:
            return None
        port = port_number(text)
        if port is None:
            raise ConfigError(_variable(name), "not a port number", "an integer 1-65535 or empty")
        return port
    if name in ("default_region", "metrics_path", "check_path"):
        return text or None
    if name in ("pseudonym_key", "pseudonym_key_previous"):
        return raw.strip() or None
    return text


def _choice(name: str, value: object, choices: Iterable[str]) -> str:
    allowed = tuple(choices)
    if isinstance(value, str) and value.strip().lower() in allowed:
        return value.strip().lower()
    # Echo only what cannot be a secret or a number: a short word, as typos are.
    plain = isinstance(value, str) and re.fullmatch(r"[A-Za-z_\- ]{1,20}", value) is not None
    shown = repr(value) if plain else "this value"
    raise ConfigError(_variable(name), f"{shown} is not accepted", ", ".join(allowed))


def _header_names(name: str, value: object) -> tuple[str, ...]:
    # A string is comma-separated names, as in the environment: GuardConfig(extra_headers="a,b").
    items = _items(value) if isinstance(value, str) else value
    if not isinstance(items, Iterable):
        raise ConfigError(_variable(name), "not a list of names", "comma-separated header names")
    names: list[str] = []
    for position, item in enumerate(items, 1):
        if not isinstance(item, str) or not _TOKEN.fullmatch(item.strip()):
            raise ConfigError(
                _variable(name),
                f"item {position} is not a header name",
                "comma-separated header names (letters, digits, -_.!#$%&'*+^`|~; at most 128)",
            )
        folded = fold(item)
        if folded not in names:
            names.append(folded)
    return tuple(names)


def _validated(config: GuardConfig) -> dict[str, Any]:
    out: dict[str, Any] = {
        "mode": _choice("mode", config.mode, MODES),
        "scan_values": _choice("scan_values", config.scan_values, SCAN_VALUES),
        "log_level": _choice("log_level", config.log_level, LOG_LEVELS),
        "log_format": _choice("log_format", config.log_format, LOG_FORMATS),
        "extra_headers": _header_names("extra_headers", config.extra_headers),
        "allow_headers": _header_names("allow_headers", config.allow_headers),
    }
    both = set(out["extra_headers"]) & set(out["allow_headers"])
    if both:
        raise ConfigError(
            _variable("allow_headers"),
            f"{len(both)} name(s) also listed in PRIVACY_GUARD_EXTRA_HEADERS",
            "names that are not also in PRIVACY_GUARD_EXTRA_HEADERS",
        )

    region = config.default_region
    if region is not None:
        if (
            not isinstance(region, str)
            or region.strip().upper() not in phonenumbers.SUPPORTED_REGIONS
        ):
            raise ConfigError(
                _variable("default_region"),
                "not a region phonenumbers supports",
                "an ISO 3166 alpha-2 region such as GB, AU or US (any case), or empty",
            )
        region = region.strip().upper()
    out["default_region"] = region

    if not isinstance(config.metrics, bool):
        raise ConfigError(_variable("metrics"), "not a boolean", "true/false/1/0/yes/no/on/off")
    path = config.metrics_path
    if path is not None and (not isinstance(path, str) or not _PATH.fullmatch(path)):
        raise ConfigError(
            _variable("metrics_path"),
            "not an absolute URL path",
            "a path such as /metrics (no query string, no spaces), or empty",
        )
    port = config.metrics_port
    if port is not None and (
        isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535
    ):
        raise ConfigError(_variable("metrics_port"), "not a port number", "1-65535 or empty")
    if not config.metrics and (path is not None or port is not None):
        raise ConfigError(
            _variable("metrics"),
            "metrics are off but PRIVACY_GUARD_METRICS_PATH or _PORT is set",
            "true when a metrics path or port is set",
        )
    out["metrics_host"] = _host(config.metrics_host)
    out["check_path"] = _path("check_path", config.check_path)
    if out["check_path"] is not None and out["check_path"] == path:
        raise ConfigError(
            _variable("check_path"),
            "the same path as PRIVACY_GUARD_METRICS_PATH",
            "a path other than the metrics path, or empty",
        )

    out["pseudonym_key"] = _key("pseudonym_key", config.pseudonym_key)
    out["pseudonym_key_previous"] = _key("pseudonym_key_previous", config.pseudonym_key_previous)
    if out["pseudonym_key_previous"] is not None and out["pseudonym_key"] is None:
        raise ConfigError(
            _variable("pseudonym_key_previous"),
            "set without PRIVACY_GUARD_PSEUDONYM_KEY",
            "a previous key only together with a current key",
        )

    out["trusted_sources"] = _networks(config.trusted_sources)
    out["trusted_paths"] = tuple(_path("trusted_paths", p) for p in _items(config.trusted_paths))
    out["trusted_headers"] = _header_names("trusted_headers", config.trusted_headers)
    trusted = ("trusted_sources", "trusted_paths", "trusted_headers")
    given = [name for name in trusted if out[name]]
    if given and len(given) != len(trusted):
        missing = next(name for name in trusted if not out[name])
        raise ConfigError(
            _variable(missing),
            f"empty while {_variable(given[0])} is set",
            "PRIVACY_GUARD_TRUSTED_SOURCES, _PATHS and _HEADERS set together, or none of them",
        )

    for name in ("scan_budget", "scan_bytes"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(name, "not a non-negative integer", "an integer >= 0")
    return out


def _items(value: object) -> tuple[object, ...]:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    if isinstance(value, Iterable):
        return tuple(value)
    return (value,)


def _path(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _PATH.fullmatch(value):
        raise ConfigError(
            _variable(name),
            "not an absolute URL path",
            "a path such as /privacy-check (no query string, no spaces), or empty",
        )
    return value


def _key(name: str, value: object) -> bytes | None:
    """A secret of at least 32 bytes, given as hex or base64. Never echoed in an error."""
    if value is None:
        return None
    if isinstance(value, bytes):
        key = value
    elif isinstance(value, str):
        text = value.strip()
        _hex_typo(name, text)
        try:
            if re.fullmatch(r"(?:[0-9a-fA-F]{2})+", text):
                key = bytes.fromhex(text)
            else:
                padded = text.replace("-", "+").replace("_", "/")
                key = base64.b64decode(padded + "=" * (-len(padded) % 4), validate=True)
        except (ValueError, binascii.Error):
            raise ConfigError(
                _variable(name), "not hex or base64", "a secret of at least 32 bytes, hex or base64"
            ) from None
    else:
        raise ConfigError(_variable(name), "not a key", "a secret of at least 32 bytes")
    if len(key) < 32:
        raise ConfigError(
            _variable(name),
            "decodes to fewer than 32 bytes",
            "a secret of at least 32 bytes, hex (64+ characters) or base64 (43+ characters); "
            "generate one with: python -c 'import secrets; print(secrets.token_hex(32))'",
        )
    return key


def _hex_typo(name: str, text: str) -> None:
    """Refuse a hex key with a typo: read as base64 it would decode to a different key, and one
    host with a mistyped key would silently compute tokens that match no other host's.

    A random base64 key of 43+ characters has at most two characters outside 0-9a-f with
    probability below 1e-16, so such a text is a hex key.
    """
    not_hex = sum(1 for c in text if c not in string.hexdigits)
    if not_hex == 0 and len(text) % 2:
        raise ConfigError(
            _variable(name),
            "looks like hex but has an odd number of digits",
            "a secret of at least 32 bytes, hex (64+ characters) or base64 (43+ characters)",
        )
    if 0 < not_hex <= 2 and len(text) >= 40:
        raise ConfigError(
            _variable(name),
            f"looks like hex but holds {not_hex} character(s) that are not hex digits",
            "a secret of at least 32 bytes, hex (64+ characters) or base64 (43+ characters)",
        )


def _networks(value: object) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for position, item in enumerate(_items(value), 1):
        if isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network):
            networks.append(item)
            continue
        try:
            networks.append(ipaddress.ip_network(str(item).strip()))
        except ValueError:
            raise ConfigError(
                _variable("trusted_sources"),
                f"item {position} is not a network (or has host bits set)",
                "comma-separated CIDRs such as 192.0.2.0/24, 2001:db8::/32",
            ) from None
    return tuple(networks)


def _host(value: object) -> str:
    if isinstance(value, str):
        text = value.strip()
        if text[:1] == "[" and text[-1:] == "]":  # an IPv6 literal as a URL writes it
            text = text[1:-1]
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            if _HOST.fullmatch(text) and not re.fullmatch(r"[0-9.]+", text):
                return text
    raise ConfigError(
        _variable("metrics_host"), "not an address", "an IP address or host name (127.0.0.1)"
    )
