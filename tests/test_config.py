"""Configuration: every variable of DESIGN's table, from the environment and as arguments."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import structlog
from conftest import call, http_scope, status_of
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from guard import ConfigError, GuardConfig, PrivacyGuard
from guard.events import EVENT_CONFIG

P = "PRIVACY_GUARD_"

DEFAULTS = {
    "mode": "strip",
    "extra_headers": (),
    "allow_headers": (),
    "scan_values": "strip",
    "default_region": None,
    "metrics": True,
    "metrics_path": None,
    "metrics_port": None,
    "metrics_host": "127.0.0.1",
    "log_level": "info",
    "log_format": "json",
}

GOOD_ENV = [
    # (variable, text, field, parsed)
    ("MODE", "strip", "mode", "strip"),
    ("MODE", "report", "mode", "report"),
    ("EXTRA_HEADERS", "", "extra_headers", ()),
    ("EXTRA_HEADERS", "x-acme-sub", "extra_headers", ("x-acme-sub",)),
    ("EXTRA_HEADERS", "X_Acme_Sub, x.acme.sub ,x-other,", "extra_headers",
     ("x-acme-sub", "x-other")),
    ("ALLOW_HEADERS", "", "allow_headers", ()),
    ("ALLOW_HEADERS", "x-msisdn", "allow_headers", ("x-msisdn",)),
    ("ALLOW_HEADERS", "X-MSISDN,x_msisdn, X.Up.Calling.Line.Id", "allow_headers",
     ("x-msisdn", "x-up-calling-line-id")),
    ("SCAN_VALUES", "strip", "scan_values", "strip"),
    ("SCAN_VALUES", "report", "scan_values", "report"),
    ("SCAN_VALUES", "off", "scan_values", "off"),
    ("DEFAULT_REGION", "", "default_region", None),
    ("DEFAULT_REGION", "GB", "default_region", "GB"),
    ("DEFAULT_REGION", "gb", "default_region", "GB"),
    ("DEFAULT_REGION", "Au", "default_region", "AU"),
    ("DEFAULT_REGION", "us", "default_region", "US"),
    ("METRICS_PATH", "", "metrics_path", None),
    ("METRICS_PATH", "/metrics", "metrics_path", "/metrics"),
    ("METRICS_PATH", "/internal/prom-metrics", "metrics_path", "/internal/prom-metrics"),
    ("METRICS_PATH", "/", "metrics_path", "/"),  # a metrics-only app: the root is the path
    ("METRICS_PATH", "/" + "m" * 255, "metrics_path", "/" + "m" * 255),  # the longest
    ("METRICS_PORT", "", "metrics_port", None),
    ("METRICS_PORT", "9464", "metrics_port", 9464),
    ("METRICS_PORT", "1", "metrics_port", 1),
    ("METRICS_PORT", "65535", "metrics_port", 65535),
    ("METRICS_HOST", "127.0.0.1", "metrics_host", "127.0.0.1"),
    ("METRICS_HOST", "0.0.0.0", "metrics_host", "0.0.0.0"),
    ("METRICS_HOST", "::1", "metrics_host", "::1"),
    ("METRICS_HOST", "[::1]", "metrics_host", "::1"),  # as a URL writes it
    ("METRICS_HOST", "localhost", "metrics_host", "localhost"),
    ("METRICS_HOST", "metrics.internal.example", "metrics_host", "metrics.internal.example"),
    ("LOG_LEVEL", "debug", "log_level", "debug"),
    ("LOG_LEVEL", "info", "log_level", "info"),
    ("LOG_LEVEL", "warning", "log_level", "warning"),
    ("LOG_LEVEL", "error", "log_level", "error"),
    ("LOG_FORMAT", "json", "log_format", "json"),
    ("LOG_FORMAT", "console", "log_format", "console"),
]  # fmt: skip

BAD_ENV = [
    # (variable, text)
    ("MODE", "bogus"),
    ("MODE", "remove"),
    ("MODE", "strip,report"),
    ("EXTRA_HEADERS", "x acme"),
    ("EXTRA_HEADERS", "x-ok, x:bad"),
    ("EXTRA_HEADERS", "x-msisdn;x-imsi"),
    ("EXTRA_HEADERS", "x-é"),
    ("EXTRA_HEADERS", "x" * 129),
    ("ALLOW_HEADERS", "x msisdn"),
    ("ALLOW_HEADERS", "x-msisdn, (x-imsi)"),
    ("SCAN_VALUES", "on"),
    ("SCAN_VALUES", "remove"),
    ("SCAN_VALUES", "true"),
    ("DEFAULT_REGION", "XX"),
    ("DEFAULT_REGION", "UK"),
    ("DEFAULT_REGION", "GBR"),
    ("DEFAULT_REGION", "44"),
    ("METRICS", "maybe"),
    ("METRICS", "2"),
    ("METRICS", "enabled"),
    ("METRICS", "t"),
    ("METRICS_PATH", "metrics"),
    ("METRICS_PATH", "/metrics?format=text"),
    ("METRICS_PATH", "/my metrics"),
    ("METRICS_PATH", "http://localhost/metrics"),
    ("METRICS_PORT", "0"),
    ("METRICS_PORT", "65536"),
    ("METRICS_PORT", "-1"),
    ("METRICS_PORT", "http"),
    ("METRICS_PORT", "9464.0"),
    ("METRICS_PORT", "9" * 5000),  # past Python's int() digit limit: still the port's error
    ("METRICS_PORT", "000009464"),
    ("METRICS_HOST", "not a host"),
    ("METRICS_HOST", "http://127.0.0.1"),
    ("METRICS_HOST", "127.0.0.1:9464"),
    ("METRICS_HOST", "a..b"),  # an empty label: no resolver can take it
    ("METRICS_HOST", "x" * 64 + ".example"),  # a label over 63 characters
    ("METRICS_HOST", "[::1"),
    ("METRICS_HOST", "::1]"),
    # dotted digits that are no IPv4 address: never a host name, whatever a resolver makes of them
    ("METRICS_HOST", "256.1.1.1"),
    ("METRICS_HOST", "127.1"),
    ("METRICS_HOST", "10.1"),
    ("LOG_LEVEL", "trace"),
    ("LOG_LEVEL", "verbose"),
    ("LOG_FORMAT", "text"),
    ("LOG_FORMAT", "logfmt"),
    ("METRICS_PATH", "/" + "m" * 256),  # one character past the longest path
]

GOOD_ARGS = [
    # (field, value, parsed)
    ("mode", "report", "report"),
    ("extra_headers", ["X-Acme-Sub", "x_acme_sub", "x-other"], ("x-acme-sub", "x-other")),
    ("allow_headers", ("x.msisdn",), ("x-msisdn",)),
    ("scan_values", "off", "off"),
    ("default_region", "gb", "GB"),
    ("default_region", None, None),
    ("metrics", False, False),
    ("metrics_path", "/metrics", "/metrics"),
    ("metrics_port", 9464, 9464),
    ("metrics_host", "::1", "::1"),
    ("log_level", "debug", "debug"),
    ("log_format", "console", "console"),
]

BAD_ARGS = [
    # (field, value, variable named)
    ("mode", "bogus", "MODE"),
    ("mode", None, "MODE"),
    ("extra_headers", ("bad name",), "EXTRA_HEADERS"),
    ("extra_headers", (42,), "EXTRA_HEADERS"),
    ("allow_headers", ("x:y",), "ALLOW_HEADERS"),
    ("allow_headers", 7, "ALLOW_HEADERS"),
    ("scan_values", "yes", "SCAN_VALUES"),
    ("default_region", "XX", "DEFAULT_REGION"),
    ("default_region", 44, "DEFAULT_REGION"),
    ("metrics", "yes", "METRICS"),
    ("metrics", 1, "METRICS"),
    ("metrics_path", "metrics", "METRICS_PATH"),
    ("metrics_port", 0, "METRICS_PORT"),
    ("metrics_port", 70000, "METRICS_PORT"),
    ("metrics_port", True, "METRICS_PORT"),
    ("metrics_port", "9464", "METRICS_PORT"),
    ("metrics_host", "not a host", "METRICS_HOST"),
    ("log_level", "trace", "LOG_LEVEL"),
    ("log_format", "xml", "LOG_FORMAT"),
]

BOOLEANS = [
    *[(text, True) for text in ("true", "1", "yes", "on", "TRUE", "Yes", "On", "tRuE")],
    *[(text, False) for text in ("false", "0", "no", "off", "FALSE", "No", "OFF", "fAlSe")],
]

TYPOS = [
    # (the typo, the suggestion)
    ("MOD", "MODE"),
    ("MODES", "MODE"),
    ("EXTRA_HEADER", "EXTRA_HEADERS"),
    ("ALLOWED_HEADERS", "ALLOW_HEADERS"),
    ("SCAN_VALUE", "SCAN_VALUES"),
    ("DEFAULTREGION", "DEFAULT_REGION"),
    ("METRIC", "METRICS"),
    ("METRICSPATH", "METRICS_PATH"),
    ("METRIC_PORT", "METRICS_PORT"),
    ("METRICS_HOSTNAME", "METRICS_HOST"),
    ("LOGLEVEL", "LOG_LEVEL"),
    ("LOG_FMT", "LOG_FORMAT"),
]


def assert_names(exc: ConfigError, variable: str) -> None:
    assert exc.variable == variable
    assert variable in str(exc)
    assert exc.accepted
    assert exc.accepted in str(exc)


def test_defaults_are_designs() -> None:
    config = GuardConfig.from_env(environ={})

    assert config == GuardConfig()
    assert {name: getattr(config, name) for name in DEFAULTS} == DEFAULTS


@pytest.mark.parametrize(("variable", "text", "field", "parsed"), GOOD_ENV)
def test_good_environment_values(variable: str, text: str, field: str, parsed: object) -> None:
    config = GuardConfig.from_env(environ={P + variable: text})

    assert getattr(config, field) == parsed
    others = {name: value for name, value in DEFAULTS.items() if name != field}
    assert {name: getattr(config, name) for name in others} == others


@pytest.mark.parametrize(("variable", "text"), BAD_ENV)
def test_bad_environment_values_name_the_variable(variable: str, text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        GuardConfig.from_env(environ={P + variable: text})

    assert_names(caught.value, P + variable)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("variable", sorted({v for v, _ in BAD_ENV}))
def test_a_long_bad_value_is_never_echoed(variable: str) -> None:
    text = "447700900123 " * 40  # an identifier pasted by mistake, or a secret

    with pytest.raises(ConfigError) as caught:
        GuardConfig.from_env(environ={P + variable: text})

    assert_names(caught.value, P + variable)
    assert "447700900123" not in str(caught.value)
    assert "447700900123" not in repr(caught.value)


@pytest.mark.parametrize("variable", ["MODE", "SCAN_VALUES", "LOG_LEVEL", "LOG_FORMAT"])
def test_a_short_value_with_digits_is_never_echoed_but_a_typo_is(variable: str) -> None:
    """Only a short plain word is quoted back (a typo the operator will recognise): a value
    with digits could be a phone number or a secret, however short."""
    for text in ("447700900123", "strip2", "7700 900123"):
        with pytest.raises(ConfigError) as caught:
            GuardConfig.from_env(environ={P + variable: text})
        assert_names(caught.value, P + variable)
        assert text not in str(caught.value)
        assert "this value" in str(caught.value)

    with pytest.raises(ConfigError) as caught:
        GuardConfig.from_env(environ={P + variable: "bogus"})
    assert "'bogus'" in str(caught.value)


@pytest.mark.parametrize("field", ["scan_budget", "scan_bytes"])
def test_the_value_scan_bounds_take_zero_and_refuse_what_is_not_a_count(field: str) -> None:
    """Zero is a bound (no value checks at all), not an error; anything that is not a
    non-negative integer is refused by the argument's name (it has no variable)."""
    assert getattr(GuardConfig(**{field: 0}), field) == 0
    assert getattr(GuardConfig(**{field: 1}), field) == 1
    for value in (-1, True, "32", 1.5, None):
        with pytest.raises(ConfigError) as caught:
            GuardConfig(**{field: value})
        assert caught.value.variable == field
        assert "an integer >= 0" in str(caught.value)


@pytest.mark.parametrize(("field", "value", "parsed"), GOOD_ARGS)
def test_good_constructor_arguments(field: str, value: Any, parsed: object) -> None:
    config = GuardConfig(**{field: value})

    assert getattr(config, field) == parsed


@pytest.mark.parametrize(("field", "value", "variable"), BAD_ARGS)
def test_bad_constructor_arguments_name_the_variable(field: str, value: Any, variable: str) -> None:
    with pytest.raises(ConfigError) as caught:
        GuardConfig(**{field: value})

    assert_names(caught.value, P + variable)


@pytest.mark.parametrize(("text", "value"), BOOLEANS)
def test_booleans_in_any_case(text: str, value: bool) -> None:
    assert GuardConfig.from_env(environ={P + "METRICS": text}).metrics is value


@pytest.mark.parametrize(("typo", "suggestion"), TYPOS)
def test_unknown_variable_suggests_the_closest(typo: str, suggestion: str) -> None:
    with pytest.raises(ConfigError) as caught:
        GuardConfig.from_env(environ={P + typo: "strip"})

    assert_names(caught.value, P + typo)
    assert f"did you mean {P + suggestion}" in str(caught.value)


def test_unknown_variable_is_an_error_even_next_to_good_ones() -> None:
    environ = {P + "MODE": "strip", P + "SCAN_VALUES": "off", P + "ALOW_HEADERS": "x-msisdn"}

    with pytest.raises(ConfigError) as caught:
        GuardConfig.from_env(environ=environ)

    assert caught.value.variable == P + "ALOW_HEADERS"
    assert P + "ALLOW_HEADERS" in str(caught.value)


@pytest.mark.parametrize(
    "environ",
    [
        {P + "METRICS": "false", P + "METRICS_PATH": "/metrics"},
        {P + "METRICS": "off", P + "METRICS_PORT": "9464"},
        {P + "METRICS": "0", P + "METRICS_PATH": "/metrics", P + "METRICS_PORT": "9464"},
    ],
)
def test_metrics_off_with_a_path_or_port_is_an_error(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as caught:
        GuardConfig.from_env(environ=environ)

    assert caught.value.variable.startswith(P + "METRICS")
    assert P + "METRICS" in str(caught.value)


@pytest.mark.parametrize("arguments", [{"metrics_path": "/metrics"}, {"metrics_port": 9464}])
def test_metrics_off_with_a_path_or_port_is_an_error_as_arguments(
    arguments: dict[str, Any],
) -> None:
    with pytest.raises(ConfigError):
        GuardConfig(metrics=False, **arguments)


def test_metrics_off_without_a_path_or_port_is_fine() -> None:
    environ = {P + "METRICS": "false", P + "METRICS_PATH": "", P + "METRICS_PORT": ""}

    config = GuardConfig.from_env(environ=environ)

    assert (config.metrics, config.metrics_path, config.metrics_port) == (False, None, None)


@pytest.mark.parametrize(
    ("extra", "allow"),
    [
        ("x-acme-sub", "x-acme-sub"),
        ("X_Acme_Sub", "x.acme.sub"),
        ("x-one,x-two", "x-three, X-TWO"),
    ],
)
def test_a_name_in_both_extra_and_allow_is_an_error(extra: str, allow: str) -> None:
    environ = {P + "EXTRA_HEADERS": extra, P + "ALLOW_HEADERS": allow}

    with pytest.raises(ConfigError) as caught:
        GuardConfig.from_env(environ=environ)

    assert caught.value.variable in (P + "EXTRA_HEADERS", P + "ALLOW_HEADERS")
    assert P + "EXTRA_HEADERS" in str(caught.value)
    assert P + "ALLOW_HEADERS" in str(caught.value)
    with pytest.raises(ConfigError):
        GuardConfig(extra_headers=tuple(extra.split(",")), allow_headers=tuple(allow.split(",")))


@pytest.mark.parametrize("field", ["extra_headers", "allow_headers", "trusted_headers"])
@pytest.mark.parametrize(
    ("value", "names"),
    [
        ("x-acme-contact", ("x-acme-contact",)),
        ("x-acme-contact, X_Acme_Line", ("x-acme-contact", "x-acme-line")),
        ("x-a,,x-b,", ("x-a", "x-b")),
        ("", ()),
    ],
)
def test_a_header_list_argument_may_be_text_as_in_the_environment(
    field: str, value: str, names: tuple[str, ...]
) -> None:
    extra: dict[str, object] = {}
    if field == "trusted_headers" and names:
        extra = {"trusted_sources": ("192.0.2.0/24",), "trusted_paths": ("/partner",)}
    assert getattr(GuardConfig(**{field: value}, **extra), field) == names


@pytest.mark.parametrize(
    ("variable", "default"),
    [
        ("MODE", "strip"),
        ("SCAN_VALUES", "strip"),
        ("METRICS", "true"),
        ("METRICS_HOST", "127.0.0.1"),
        ("LOG_LEVEL", "info"),
        ("LOG_FORMAT", "json"),
    ],
)
@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_setting_is_an_error_that_says_how_to_get_the_default(
    variable: str, default: str, empty: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        GuardConfig.from_env({P + variable: empty})
    assert caught.value.variable == P + variable
    assert caught.value.problem == f"empty (unset it for the default, {default})"
    assert GuardConfig.from_env({}).__dict__[variable.lower()] in (default, True)


@pytest.mark.parametrize(
    "variable", ["METRICS_PATH", "METRICS_PORT", "EXTRA_HEADERS", "PSEUDONYM_KEY", "CHECK_PATH"]
)
def test_an_empty_optional_setting_means_none(variable: str) -> None:
    assert GuardConfig.from_env({P + variable: ""}) == GuardConfig()


def test_other_variables_are_ignored() -> None:
    environ = {
        "PATH": "/usr/bin",
        "GUARD_CI_STRICT": "1",
        "PROMETHEUS_MULTIPROC_DIR": "/tmp/metrics",
        "MY_PRIVACY_GUARD_MODE": "bogus",
        "PRIVACY_GUARDIAN": "on",
        "MODE": "bogus",
    }

    assert GuardConfig.from_env(environ=environ) == GuardConfig()


def test_from_env_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(P + "MODE", "report")
    monkeypatch.setenv(P + "DEFAULT_REGION", "au")

    config = GuardConfig.from_env()

    assert (config.mode, config.default_region) == ("report", "AU")


def test_config_is_frozen() -> None:
    config = GuardConfig()

    with pytest.raises(dataclasses.FrozenInstanceError):
        config.mode = "report"  # type: ignore[misc]


LIFESPAN_STARTUP = [{"type": "lifespan.startup"}]


async def _app(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("never called")


@pytest.mark.parametrize(
    ("variable", "text"),
    [
        ("MODE", "bogus"),
        ("SCAN_VALUES", "maybe"),
        ("METRICS", "perhaps"),
        ("MODEE", "strip"),
    ],
)
def test_guard_with_a_bad_environment_raises_at_once(
    monkeypatch: pytest.MonkeyPatch, variable: str, text: str
) -> None:
    monkeypatch.setenv(P + variable, text)

    with pytest.raises(ConfigError) as caught:
        PrivacyGuard(_app)

    assert caught.value.variable == P + variable


def test_a_framework_built_guard_with_a_bad_environment_logs_why_it_fails_the_lifespan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Built lazily by Starlette, the guard cannot raise: it fails `lifespan.startup` with the
    error, and logs it as its own config event too (what log pipelines alert on), not only
    through the server's message."""
    monkeypatch.setenv(P + "MODE", "bogus")
    app = Starlette()
    app.add_middleware(PrivacyGuard, registry=CollectorRegistry())

    with structlog.testing.capture_logs() as logs:
        sent = call(app, {"type": "lifespan", "asgi": {"version": "3.0"}}, LIFESPAN_STARTUP)

    assert [m["type"] for m in sent] == ["lifespan.startup.failed"]
    assert P + "MODE" in sent[0]["message"]
    configs = [e for e in logs if e["event"] == EVENT_CONFIG]
    assert len(configs) == 1
    assert P + "MODE" in configs[0]["error"]
    assert status_of(call(app, http_scope([]))) == 500
