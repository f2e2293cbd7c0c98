"""The operator's monitoring kit in grafana/: dashboard, provisioning and Prometheus alert rules.

Checked for real, with the tools that run them (see /work/shared/TOOLING.md):
- the alert rules with `promtool check rules` and their unit tests with `promtool test rules`,
  plus two deliberately broken copies of the rules that those unit tests must reject;
- the dashboard's structure with TypeScript against `@grafana/schema` (npm), its PromQL with the
  `promql-parser` package (every metric one the guard exports, every selector filtered by the
  `job` and `instance` variables);
- live: `privacy-guard demo` with 2 workers scraped by a real Prometheus loading the rules; every
  panel expression must return a finite value on the very first scrape and after traffic, the
  flagged-request count must be exact across both workers, and every rule must be healthy.

A missing tool skips its test, unless GUARD_CI_STRICT=1, which turns the skip into a failure.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import promql_parser
import pytest
import yaml
from support import free_port, require_tool, stop

ROOT = Path(__file__).resolve().parents[1]
GRAFANA = ROOT / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "privacy-guard.json"
ALERTS = GRAFANA / "alerts"
RULES = ALERTS / "privacy-guard.rules.yml"
RULE_TESTS = ALERTS / "privacy-guard.test.yml"
PROVISIONING = GRAFANA / "provisioning"

GUARD_METRICS = frozenset(
    {
        "privacy_guard_requests_total",
        "privacy_guard_identifiers_total",
        "privacy_guard_info",
        "privacy_guard_numbers_total",
        "privacy_guard_scan_budget_exhausted_total",
        "privacy_guard_errors_total",
        "privacy_guard_overhead_seconds_bucket",
        "privacy_guard_overhead_seconds_sum",
        "privacy_guard_overhead_seconds_count",
        "privacy_guard_layers_in_front",
    }
)
ALLOWED_METRICS = GUARD_METRICS | {"up"}
ALERT_NAMES = {
    "PrivacyGuardCarrierInjecting",
    "PrivacyGuardReportMode",
    "PrivacyGuardScanBudgetExhausted",
    "PrivacyGuardErrors",
    "PrivacyGuardMetricsAbsent",
    "PrivacyGuardNotOutermost",
}
RECORD_NAMES = {"job:privacy_guard_info:present"}  # what MetricsAbsent looks a week back over
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# Grafana's macros and the dashboard's variables, as a live check substitutes them.
LIVE_VARIABLES = {
    "__rate_interval": "1m",
    "__rate_interval_ms": "60000",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "5m",
    "__range_s": "300",
    "__range_ms": "300000",
    "job": ".*",
    "instance": ".*",
    "datasource": "prometheus",
}
_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|(\w+))")


def load_dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def iter_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that queries data: rows are skipped, the panels of collapsed rows included."""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title + refId, raw expression) for every target of every panel."""
    return [
        (f"{panel.get('title')!r} {target.get('refId')}", target["expr"])
        for panel in iter_panels(dashboard)
        for target in panel.get("targets", [])
    ]


def substitute(expr: str, variables: dict[str, str]) -> str:
    """Replace Grafana's $macros / ${variables} / [[variables]]; an unknown name raises KeyError."""

    def one(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        return variables[name]

    return _VARIABLE.sub(one, expr)


def run(cmd: list[str], *, cwd: Path | None = None, timeout: float = 60) -> tuple[int, str]:
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    return proc.returncode, proc.stdout


# --- alert rules ----------------------------------------------------------------------------


def test_rules_pass_promtool_check() -> None:
    promtool = require_tool("promtool")
    rc, out = run([promtool, "check", "rules", str(RULES)])
    assert rc == 0, out
    assert f"SUCCESS: {len(ALERT_NAMES) + len(RECORD_NAMES)} rules found" in out, out


def test_rules_name_the_expected_alerts_with_severity_and_annotations() -> None:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    rules = [rule for group in groups for rule in group["rules"] if "alert" in rule]
    assert {rule["alert"] for rule in rules} == ALERT_NAMES
    records = {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}
    assert records == RECORD_NAMES
    for rule in rules:
        assert rule["labels"]["severity"], rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]
    tests = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in tests:
        for check in case.get("alert_rule_test", []):
            (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert fired == ALERT_NAMES, "every alert needs a unit test that makes it fire"
    assert quiet == ALERT_NAMES, "every alert needs a unit test where it stays quiet"


def test_rule_unit_tests_pass() -> None:
    promtool = require_tool("promtool")
    rc, out = run([promtool, "test", "rules", RULE_TESTS.name], cwd=ALERTS)
    assert rc == 0, out
    assert "SUCCESS" in out, out


_CARRIER_SEEN_IN_THE_HOUR = (
    'present_over_time(privacy_guard_identifiers_total{header!~"cookie|query"}[1h] offset 10m)'
)
_CARRIER_NEW_SERIES_BRANCHES = """\
              (
                privacy_guard_identifiers_total{header!~"cookie|query"}
                unless
                privacy_guard_identifiers_total{header!~"cookie|query"} offset 10m
              )
              and on (job, instance) (up offset 10m == 1)
            or
              (
                privacy_guard_identifiers_total{header!~"cookie|query"}
                unless
                SEEN
              )
            or
""".replace("SEEN", _CARRIER_SEEN_IN_THE_HOUR)


@pytest.mark.parametrize(
    ("old", "new", "failing_test"),
    [
        pytest.param(
            _CARRIER_NEW_SERIES_BRANCHES,
            "",
            "carrier alert fires on the first increment of a brand-new series",
            id="increase-only-misses-new-series",
        ),
        pytest.param(
            'header!~"cookie|query"',
            'header!~"cookie"',
            "carrier alert ignores cookie and query-string findings",
            id="query-findings-not-excluded",
        ),
        pytest.param(
            "              and on (job, instance) (up offset 10m == 1)\n",
            "",
            "carrier alert stays quiet after a failed scrape",
            id="a-failed-scrape-looks-new",
        ),
        pytest.param(
            _CARRIER_SEEN_IN_THE_HOUR,
            'privacy_guard_identifiers_total{header!~"cookie|query"} offset 10m',
            "carrier alert stays quiet after Prometheus was down",
            id="a-prometheus-gap-looks-new",
        ),
        pytest.param(
            "job:privacy_guard_info:present[7d]",
            "job:privacy_guard_info:present[1h]",
            "absent alert keeps firing while a whole guard job is down or unguarded for hours",
            id="guard-jobs-forgotten-after-an-hour",
        ),
    ],
)
def test_rule_unit_tests_catch_a_broken_carrier_alert(
    tmp_path: Path, old: str, new: str, failing_test: str
) -> None:
    """The unit tests are not vacuous: a rule that misses what they guard against fails them."""
    promtool = require_tool("promtool")
    rules = RULES.read_text(encoding="utf-8")
    assert old in rules, "the rule changed: update this mutation"
    (tmp_path / RULES.name).write_text(rules.replace(old, new), encoding="utf-8")
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    rc, out = run([promtool, "test", "rules", RULE_TESTS.name], cwd=tmp_path)
    assert rc != 0, out
    assert f"name: {failing_test}," in out, out


# --- dashboard queries across scrape gaps ------------------------------------------------------

# Every counter the new-series panels read, flat for hours (nothing new happens), on one target.
_FLAT_COUNTERS = [
    'privacy_guard_requests_total{type="http",result="clean"}',
    'privacy_guard_requests_total{type="http",result="flagged"}',
    'privacy_guard_identifiers_total{header="x-msisdn",kind="msisdn",action="removed"}',
    'privacy_guard_identifiers_total{header="cookie",kind="msisdn",action="removed"}',
    'privacy_guard_scan_budget_exhausted_total{type="http"}',
    'privacy_guard_errors_total{stage="names"}',
    'privacy_guard_numbers_total{region="GB"}',
]
# (what happened at 90 minutes, its samples for the counters, and for `up`)
_GAPS = {
    "a failed scrape": ("500x89 stale 500x70", "1x89 0 1x70"),
    "Prometheus down for 7 minutes": ("500x89 _x7 500x63", "1x89 _x7 1x63"),
}


@pytest.mark.parametrize("gap", _GAPS)
def test_panels_show_nothing_new_after_a_gap(tmp_path: Path, gap: str) -> None:
    """A series missing from one scrape, or from a Prometheus that was down, is not new: the
    panels that count new series in full must still read 0 when nothing new happened (they
    read the whole lifetime count, 500, before they checked the target was scraped then)."""
    promtool = require_tool("promtool")
    counters, up = _GAPS[gap]
    target = 'job="pg",instance="a:8000"'
    series = [
        {"series": name.replace("{", "{" + target + ","), "values": counters}
        for name in _FLAT_COUNTERS
    ]
    series.append({"series": "up{" + target + "}", "values": up})
    variables = {**LIVE_VARIABLES, "__range": "1h"}
    checks = [
        {"expr": f"({substitute(expr, variables)}) > 0", "eval_time": at, "exp_samples": []}
        for _, expr in panel_queries(load_dashboard())
        if " unless " in expr
        # a minute after the gap, where $__rate_interval looks; an hour after, where $__range does
        for at in ("91m", "92m", "97m", "150m", "155m")
    ]
    assert len(checks) >= 5 * 10, "the new-series panels were not found"
    (tmp_path / "panels.test.yml").write_text(
        yaml.safe_dump(
            {
                "evaluation_interval": "1m",
                "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": checks}],
            }
        ),
        encoding="utf-8",
    )
    rc, out = run([promtool, "test", "rules", "panels.test.yml"], cwd=tmp_path)
    assert rc == 0, out


# --- dashboard structure ------------------------------------------------------------------------


def test_dashboard_identity_and_variables() -> None:
    dash = load_dashboard()
    assert dash["uid"] == "privacy-guard"
    assert dash["title"] == "privacy-guard"
    assert dash["schemaVersion"] >= 39
    assert isinstance(dash["version"], int)
    assert dash.get("id") is None, "an exported id would clash on import"
    variables = {var["name"]: var for var in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("job", "instance"):
        assert variables[name]["type"] == "query"
        assert variables[name]["datasource"] == DATASOURCE
        assert "privacy_guard_info" in variables[name]["query"]
    assert variables["instance"]["multi"] is True
    assert variables["instance"]["includeAll"] is True
    assert '$job"' in variables["instance"]["query"], "instances follow the job selection"


def test_every_panel_queries_the_datasource_variable() -> None:
    dash = load_dashboard()
    panels = list(iter_panels(dash))
    assert len(panels) >= 10
    ids = [panel["id"] for panel in dash["panels"]] + [
        child["id"] for row in dash["panels"] for child in row.get("panels", [])
    ]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        title = panel.get("title")
        assert title, panel
        assert panel.get("datasource") == DATASOURCE, title
        assert panel.get("targets"), f"{title!r} has no query"
        for target in panel["targets"]:
            assert target.get("datasource", DATASOURCE) == DATASOURCE, title
            assert target.get("expr", "").strip(), f"{title!r} has an empty query"
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), f"{title!r} repeats a refId"


def test_panels_do_not_overlap() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in load_dashboard()["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0, panel["title"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                other = cells.setdefault((x, y), panel["title"])
                assert other == panel["title"], f"{panel['title']!r} overlaps {other!r}"


def test_panel_expressions_parse_and_use_only_guard_metrics() -> None:
    # Sentinels instead of ".*", so that a hard-coded job=~".*" cannot pass for the variable.
    variables = LIVE_VARIABLES | {"job": "JOB_VARIABLE", "instance": "INSTANCE_VARIABLE"}
    used: set[str] = set()
    for where, raw in panel_queries(load_dashboard()):
        expr = substitute(raw, variables)
        assert "$" not in expr, f"{where}: unsubstituted variable in {expr}"
        try:
            tree = promql_parser.parse(expr)
        except Exception as exc:
            pytest.fail(f"{where}: {expr!r} does not parse: {exc}")
        selectors: list[Any] = []

        def visit(node: Any, found: list[Any] = selectors) -> None:
            if isinstance(node, promql_parser.VectorSelector):
                found.append(node)

        promql_parser.walk(tree, pre_visit=visit)
        assert selectors, f"{where}: no metric selected"
        for selector in selectors:
            assert selector.name in ALLOWED_METRICS, f"{where}: unknown metric {selector.name}"
            used.add(selector.name)
            matchers = {(m.name, str(m.op), m.value) for m in selector.matchers.matchers}
            for label, value in (("job", "JOB_VARIABLE"), ("instance", "INSTANCE_VARIABLE")):
                assert (label, str(promql_parser.MatchOp.Re), value) in matchers, (
                    f'{where}: {selector.name} is not filtered by {label}=~"${label}"'
                )
    missing = {
        "privacy_guard_requests_total",
        "privacy_guard_identifiers_total",
        "privacy_guard_info",
        "privacy_guard_numbers_total",
        "privacy_guard_scan_budget_exhausted_total",
        "privacy_guard_errors_total",
        "privacy_guard_overhead_seconds_bucket",
    } - used
    assert not missing, f"no panel shows {sorted(missing)}"


def test_cookie_and_query_findings_have_their_own_panel() -> None:
    queries = panel_queries(load_dashboard())
    assert any('header=~"cookie|query"' in expr for _, expr in queries)
    carrier = [where for where, expr in queries if "identifiers_total" in expr and "rate(" in expr]
    for where, expr in queries:
        if where in carrier and 'header=~"cookie|query"' not in expr:
            assert 'header!~"cookie|query"' in expr, f"{where} mixes cookie/query findings in"


def test_provisioning_points_at_the_mounted_dashboards() -> None:
    source = PROVISIONING / "datasources" / "prometheus.yaml"
    provider = PROVISIONING / "dashboards" / "privacy-guard.yaml"
    datasources = yaml.safe_load(source.read_text(encoding="utf-8"))["datasources"]
    assert [ds["type"] for ds in datasources] == ["prometheus"]
    text = provider.read_text(encoding="utf-8")
    (prov,) = yaml.safe_load(text)["providers"]
    path = prov["options"]["path"]
    assert prov["type"] == "file"
    assert f"grafana/dashboards:{path}" in text, "the docker run -v example mounts another path"


@pytest.mark.slow
def test_dashboard_matches_grafana_schema(tmp_path: Path) -> None:
    """tsc --strict against @grafana/schema's Dashboard type.

    The generated TypeScript declares some JSON string fields (threshold and color modes, value
    mapping types) as string enums, and a TypeScript string enum rejects even its own values
    written as plain strings. `Json<T>` turns each string enum into the union of its values and
    keeps everything else: unknown keys, wrong types and bad enum values are still errors, as the
    deliberately broken copy checked alongside proves.
    """
    npm = require_tool("npm")
    require_tool("npx")
    rc, out = run(
        [npm, "install", "--no-audit", "--no-fund", "@grafana/schema@13", "typescript@5"],
        cwd=tmp_path,
        timeout=180,
    )
    assert rc == 0, out
    dash = load_dashboard()
    # Two broken copies (TypeScript may report only the first error of one object literal).
    bad_key = json.loads(json.dumps(dash))
    panel = next(iter_panels(bad_key))
    panel["gridPoz"] = panel.pop("gridPos")
    bad_enum = json.loads(json.dumps(dash))
    panel = next(p for p in iter_panels(bad_enum) if "thresholds" in p["fieldConfig"]["defaults"])
    panel["fieldConfig"]["defaults"]["thresholds"]["mode"] = "absolut"
    header = (
        "import type { Dashboard } from '@grafana/schema';\n"
        "type Json<T> = T extends string ? `${T}`\n"
        "  : T extends object ? { [K in keyof T]: Json<T[K]> } : T;\n"
    )
    files = {"dash.ts": dash, "bad_key.ts": bad_key, "bad_enum.ts": bad_enum}
    for name, data in files.items():
        source = f"{header}export const d: Json<Dashboard> = {json.dumps(data, indent=1)};\n"
        (tmp_path / name).write_text(source, encoding="utf-8")
    tsconfig = {
        "compilerOptions": {
            "strict": True,
            "noEmit": True,
            "target": "es2022",
            "module": "esnext",
            "moduleResolution": "bundler",
            "skipLibCheck": True,
            "types": [],
        },
        "files": list(files),
    }
    (tmp_path / "tsconfig.json").write_text(json.dumps(tsconfig), encoding="utf-8")
    rc, out = run(["npx", "--no-install", "tsc", "-p", "tsconfig.json"], cwd=tmp_path, timeout=120)
    errors = [line for line in out.splitlines() if ": error TS" in line]
    assert not [line for line in errors if line.startswith("dash.ts")], out
    # The check is not vacuous: a misspelled key and a bad enum value are both rejected.
    assert any(line.startswith("bad_key.ts") and '"gridPoz"' in line for line in errors), out
    assert any(line.startswith("bad_enum.ts") and '"absolut"' in line for line in errors), out
    assert rc != 0


# --- live: the demo behind the guard, scraped by a real Prometheus ----------------------------


FLAGGED_REQUESTS = 20
CLEAN_REQUESTS = 10
WAIT_SECONDS = 30.0


def wait_for(what: str, check: Callable[[], Any], timeout: float = WAIT_SECONDS) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` and the last error."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except Exception as exc:  # a server still starting refuses connections
            last = exc
        else:
            if result:
                return result
            last = result
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=10)

    def api(self, path: str, **params: str) -> Any:
        response = self.http.get(path, params=params)
        body = response.json()
        if body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("/api/v1/query", query=expr)
        assert data["resultType"] == "vector", data
        result: list[dict[str, Any]] = data["result"]
        return result

    def scalar(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None


class Stack:
    def __init__(self, prometheus: Prometheus, app_url: str) -> None:
        self.prometheus = prometheus
        self.app_url = app_url
        self.first_scrape: dict[str, list[dict[str, Any]]] = {}


def evaluate_panels(prometheus: Prometheus) -> dict[str, list[dict[str, Any]]]:
    """The instant result of every panel query, by panel title and refId."""
    return {
        where: prometheus.query(substitute(raw, LIVE_VARIABLES))
        for where, raw in panel_queries(load_dashboard())
    }


def assert_every_panel_shows_a_value(results: dict[str, list[dict[str, Any]]]) -> None:
    empty = [where for where, result in results.items() if not result]
    assert not empty, f"panels without data: {empty}"
    for where, result in results.items():
        for sample in result:
            assert math.isfinite(float(sample["value"][1])), f"{where}: {sample}"


def by_label(result: list[dict[str, Any]], label: str, **only: str) -> dict[str, float]:
    return {
        sample["metric"].get(label, ""): float(sample["value"][1])
        for sample in result
        if all(sample["metric"].get(k) == v for k, v in only.items())
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`privacy-guard demo --workers 2` and a Prometheus scraping it every second."""
    guard = require_tool("privacy-guard")
    prometheus_bin = require_tool("prometheus")
    tmp = tmp_path_factory.mktemp("live")
    multiproc = tmp / "multiproc"
    multiproc.mkdir()
    app_port, prom_port = free_port(), free_port()
    app_url = f"http://127.0.0.1:{app_port}"
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": "privacy-guard",
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [f"127.0.0.1:{app_port}"]}],
            }
        ],
    }
    (tmp / "prometheus.yml").write_text(json.dumps(config), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVACY_GUARD_")}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(multiproc)
    procs: list[subprocess.Popen[bytes]] = []
    prometheus: Prometheus | None = None
    logs = {name: (tmp / f"{name}.log").open("wb") for name in ("demo", "prometheus")}
    try:
        procs.append(
            subprocess.Popen(
                [guard, "demo", "--host", "127.0.0.1", "--port", str(app_port), "--workers", "2"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=logs["demo"],
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        procs.append(
            subprocess.Popen(
                [
                    prometheus_bin,
                    f"--config.file={tmp / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                    "--log.level=warn",
                ],
                stdin=subprocess.DEVNULL,
                stdout=logs["prometheus"],
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        prometheus = Prometheus(f"http://127.0.0.1:{prom_port}")
        live = Stack(prometheus, app_url)
        ready = prometheus.http
        wait_for(f"Prometheus to be ready (log: {tmp})", lambda: ready.get("/-/ready").is_success)
        # The first scrape: before any traffic, every panel must already show a value.
        wait_for(
            f"the first scrape of the demo (logs: {tmp})",
            lambda: live.prometheus.query('privacy_guard_info{job="privacy-guard"}'),
        )
        live.first_scrape = evaluate_panels(prometheus)
        yield live
    finally:
        for proc in reversed(procs):
            stop(proc)
        if prometheus is not None:
            prometheus.http.close()
        for handle in logs.values():
            handle.close()


@pytest.fixture(scope="module")
def traffic(stack: Stack) -> Stack:
    """Flagged and clean requests, each on a new connection so both workers get some."""
    flagged = {"x-msisdn": "447700900123", "x-up-calling-line-id": "447700900456"}
    with httpx.Client(
        base_url=stack.app_url, timeout=10, limits=httpx.Limits(max_keepalive_connections=0)
    ) as client:
        for headers in [flagged] * FLAGGED_REQUESTS + [{}] * CLEAN_REQUESTS:
            response = client.get("/", headers=headers)
            assert response.status_code == 200, response.text
    return stack


@pytest.mark.slow
def test_live_every_panel_shows_a_value_on_the_first_scrape(stack: Stack) -> None:
    assert_every_panel_shows_a_value(stack.first_scrape)


@pytest.mark.slow
def test_live_flagged_requests_are_counted_exactly_across_workers(traffic: Stack) -> None:
    prometheus = traffic.prometheus
    expr = 'sum(privacy_guard_requests_total{job="privacy-guard",result="flagged"})'
    wait_for(
        f"{FLAGGED_REQUESTS} flagged requests in Prometheus",
        lambda: prometheus.scalar(expr) == FLAGGED_REQUESTS,
    )
    # One count per flagged header line, under the catalog's header names.
    carrier = prometheus.query(
        'sum by (header) (privacy_guard_identifiers_total{header=~"x-msisdn|x-up-calling-line-id"})'
    )
    assert {s["metric"]["header"]: float(s["value"][1]) for s in carrier} == {
        "x-msisdn": FLAGGED_REQUESTS,
        "x-up-calling-line-id": FLAGGED_REQUESTS,
    }
    # Two scrapes after the traffic, so that rate() has samples on both sides of it.
    scrapes = 'count_over_time(up{job="privacy-guard"}[1m])'
    before = prometheus.scalar(scrapes) or 0
    wait_for("two more scrapes", lambda: (prometheus.scalar(scrapes) or 0) >= before + 2)
    results = evaluate_panels(prometheus)
    assert_every_panel_shows_a_value(results)
    # The headers' series were brand new (the traffic came after the first scrape): the table
    # counts them from their first increment, and the graph shows them, where a plain
    # increase() or rate() would read 0.
    top = by_label(results["'Top headers' A"], "header", kind="msisdn")
    assert top["x-msisdn"] == FLAGGED_REQUESTS, top
    assert top["x-up-calling-line-id"] == FLAGGED_REQUESTS, top
    graph = by_label(results["'Identifiers per second by header' A"], "header")
    assert graph["x-msisdn"] > 0, graph
    assert graph["x-up-calling-line-id"] > 0, graph
    flagged = results["'Requests flagged' A"]
    assert 0 < float(flagged[0]["value"][1]) < 1, flagged


@pytest.mark.slow
def test_live_rules_are_healthy_and_the_carrier_alert_fires(traffic: Stack) -> None:
    prometheus = traffic.prometheus

    def rules() -> list[dict[str, Any]]:
        groups = prometheus.api("/api/v1/rules")["groups"]
        return [rule for group in groups for rule in group["rules"]]

    def evaluated() -> list[dict[str, Any]]:
        found = rules()
        done = len(found) == len(ALERT_NAMES | RECORD_NAMES) and all(
            r["health"] != "unknown" for r in found
        )
        return found if done else []

    loaded = wait_for("every rule to be evaluated", evaluated)
    assert {rule["name"] for rule in loaded} == ALERT_NAMES | RECORD_NAMES
    for rule in loaded:
        assert rule["health"] == "ok", rule

    def carrier_alert() -> list[dict[str, Any]]:
        alerts = prometheus.api("/api/v1/alerts")["alerts"]
        return [
            alert
            for alert in alerts
            if alert["labels"]["alertname"] == "PrivacyGuardCarrierInjecting"
            and alert["state"] == "firing"
        ]

    firing = wait_for("PrivacyGuardCarrierInjecting to fire", carrier_alert)
    assert {alert["labels"]["header"] for alert in firing} >= {
        "x-msisdn",
        "x-up-calling-line-id",
    }
    for rule in rules():
        if rule["name"] in ALERT_NAMES - {"PrivacyGuardCarrierInjecting"}:
            assert rule["state"] == "inactive", rule
