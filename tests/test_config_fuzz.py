"""A fuzzed environment yields a valid GuardConfig or a ConfigError naming a PRIVACY_GUARD_
variable: never another exception, never a guard weaker than the operator asked for, and never a
secret echoed in an error."""

from __future__ import annotations

import dataclasses
import string

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from guard import ConfigError, GuardConfig
from guard.catalog import fold
from guard.config import ENV_PREFIX

FIELDS = [f for f in dataclasses.fields(GuardConfig) if f.metadata.get("env", True)]
KNOWN = {ENV_PREFIX + f.name.upper(): f.name for f in FIELDS}
KEY = "5f" * 32  # a test secret: 32 bytes in hex
NAMES = ["x-msisdn", "X_MSISDN, x.imsi", "x-msisdn,,", "x msisdn", "x-msisdn\n", "a" * 129, ","]
PATHS = ["/metrics", "metrics", "/a b", "/metrics?x=1", "/privacy-check", "/" + "a" * 300, ""]
# Values an operator (or a typo) could plausibly set, per variable; random text comes on top.
CANDIDATES: dict[str, list[str]] = {
    "mode": ["strip", "report", "STRIP", " report ", "reprot", "strip\x00", "off", "Report\t"],
    "extra_headers": NAMES,
    "allow_headers": NAMES,
    "trusted_headers": NAMES,
    "scan_values": ["strip", "report", "off", "Off", "of", "none", "false"],
    "default_region": ["gb", "GB", " au ", "UK", "ZZ", "001", "gbr"],
    "metrics": [
        "true",
        "false",
        "1",
        "0",
        "yes",
        "no",
        "on",
        "off",
        "TRUE",
        "tru",
        "2",
        "ｔｒｕｅ",
    ],
    "metrics_path": PATHS,
    "check_path": PATHS,
    "metrics_port": ["9100", "0", "65536", "-1", "²", "٩١٠٠", " 9100 ", "1e3", "0x10"],
    "metrics_host": ["127.0.0.1", "::1", "[::1]", "localhost", "0.0.0.0", "256.1.1.1", "a_b"],
    "log_level": ["debug", "info", "warning", "error", "critical", "INFO", "warn"],
    "log_format": ["json", "console", "text", "JSON"],
    "pseudonym_key": [KEY, KEY[:-2], KEY.upper(), "X" * 44, "not a key at all, but secret"],
    "pseudonym_key_previous": [KEY[::-1], KEY[:10]],
    "trusted_sources": ["192.0.2.0/24", "192.0.2.1/24", "2001:db8::/32", "x", "10.0.0.0/8,"],
    "trusted_paths": ["/billing", "billing", "/a,/b", "/a b"],
}
_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"]),  # os.environ cannot hold surrogates
    max_size=24,
)


@st.composite
def environments(draw: st.DrawFn) -> dict[str, str]:
    env: dict[str, str] = {"HOME": "/root", "PRIVACYGUARD_MODE": "report"}  # not our prefix
    for variable in draw(st.lists(st.sampled_from(sorted(KNOWN)), unique=True, max_size=6)):
        name = KNOWN[variable]
        env[variable] = draw(st.one_of(st.sampled_from(CANDIDATES[name]), _TEXT, st.just("")))
    if draw(st.integers(0, 9)) == 0:  # an unknown or misspelt variable of ours
        typo = draw(st.sampled_from(sorted(KNOWN)))
        cut = draw(st.integers(len(ENV_PREFIX), len(typo) - 1))
        unknown = draw(
            st.one_of(
                st.just(typo[:cut] + typo[cut + 1 :]),
                st.text(alphabet=string.ascii_uppercase + "_", max_size=12).map(
                    lambda suffix: ENV_PREFIX + suffix
                ),
            )
        )
        if unknown not in KNOWN:
            env[unknown] = draw(_TEXT)
    return env


def _asked(env: dict[str, str], name: str) -> str | None:
    raw = env.get(ENV_PREFIX + name.upper())
    return None if raw is None else raw.strip().lower()


def _items(env: dict[str, str], name: str) -> set[str]:
    raw = env.get(ENV_PREFIX + name.upper(), "")
    return {fold(item) for item in raw.split(",") if item.strip()}


def check_never_weaker(env: dict[str, str], config: GuardConfig) -> None:
    """Every setting that protects less than the default is there because it was asked for."""
    if config.mode != "strip":
        assert _asked(env, "mode") == config.mode == "report"
    if config.scan_values != "strip":
        assert _asked(env, "scan_values") == config.scan_values
    if not config.metrics:
        assert _asked(env, "metrics") in ("false", "0", "no", "off")
    assert set(config.allow_headers) <= _items(env, "allow_headers")
    assert set(config.trusted_headers) <= _items(env, "trusted_headers")
    assert _items(env, "extra_headers") <= set(config.extra_headers)
    # What is exposed, and where, is exactly what was asked.
    assert config.metrics_path == (env.get(ENV_PREFIX + "METRICS_PATH", "").strip() or None)
    assert config.check_path == (env.get(ENV_PREFIX + "CHECK_PATH", "").strip() or None)
    if ENV_PREFIX + "METRICS_HOST" not in env:
        assert config.metrics_host == "127.0.0.1"
    if _asked(env, "pseudonym_key"):
        assert config.pseudonym_key is not None


def check_error(env: dict[str, str], error: ConfigError) -> None:
    assert error.variable.startswith(ENV_PREFIX)
    assert error.variable in KNOWN or error.variable in env
    assert error.variable in str(error)
    secrets = {ENV_PREFIX + name.upper() for name in ("pseudonym_key", "pseudonym_key_previous")}
    for variable in secrets:
        raw = env.get(variable, "").strip()
        if len(raw) >= 8 and raw in str(error):
            # A short key can be a substring of a fixed message ("not a po"). It is only an echo
            # if the message came from the key: without the keys, the same error must remain
            # (about another variable) and still hold those characters.
            assert error.variable not in secrets, "an error echoes a secret"
            without = {name: value for name, value in env.items() if name not in secrets}
            with pytest.raises(ConfigError) as other:
                GuardConfig.from_env(without)
            assert str(other.value) == str(error), "an error echoes a secret"


FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(env=environments())
@example(env={"PRIVACY_GUARD_METRICS_PORT": "²"})  # a Unicode digit that int() rejects
@example(env={"PRIVACY_GUARD_MODE": "report\x00"})
@example(env={"PRIVACY_GUARD_MODE": "repor"})
@example(env={"PRIVACY_GUARD_PSEUDONYM_KEY": "not a key at all, but secret"})
@example(env={"PRIVACY_GUARD_METRICS_PORT": "x", "PRIVACY_GUARD_PSEUDONYM_KEY": "not a po"})
def test_a_fuzzed_environment_gives_a_config_or_a_config_error(env):
    try:
        config = GuardConfig.from_env(env)
    except ConfigError as error:
        check_error(env, error)
    else:
        check_never_weaker(env, config)


_ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    _TEXT,
    st.binary(max_size=40),
    st.lists(_TEXT, max_size=3),
    st.sampled_from([v for values in CANDIDATES.values() for v in values]),
)


@FUZZ
@given(kwargs=st.dictionaries(st.sampled_from([f.name for f in FIELDS]), _ANYTHING, max_size=5))
def test_fuzzed_constructor_arguments_give_a_config_or_a_config_error(kwargs):
    config, error = _construct(kwargs)
    if error is not None:
        assert error.variable.startswith(ENV_PREFIX)
    else:
        assert config is not None
        if "mode" in kwargs and config.mode == "report":
            assert kwargs["mode"].strip().lower() == "report"
        assert config.metrics in (True, False)


def _construct(kwargs: dict[str, object]) -> tuple[GuardConfig | None, ConfigError | None]:
    try:
        return GuardConfig(**kwargs), None  # type: ignore[arg-type]
    except ConfigError as error:
        return None, error


@pytest.mark.parametrize(
    ("raw", "mode"),
    [("strip", "strip"), ("report", "report"), (" Report ", "report"), ("STRIP", "strip")],
)
def test_a_mode_is_exactly_what_was_asked(raw, mode):
    assert GuardConfig.from_env({"PRIVACY_GUARD_MODE": raw}).mode == mode


@pytest.mark.parametrize("raw", ["reprot", "report\x00", "repor", "off", "strip,report", ""])
def test_anything_else_as_a_mode_is_an_error_not_report(raw):
    with pytest.raises(ConfigError) as error:
        GuardConfig.from_env({"PRIVACY_GUARD_MODE": raw})
    assert error.value.variable == "PRIVACY_GUARD_MODE"
