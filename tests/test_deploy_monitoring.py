"""Alerts and dashboard, checked by Prometheus's own promtool and against the metrics the service exposes.

* every rule passes ``promtool check rules`` (with the linter fatal) and every alert has firing and quiet
  ``promtool test rules`` cases that pass;
* every dashboard expression is valid PromQL for promtool (as a recording rule);
* every metric and label name the rules and the dashboard use is one the service exposes (``Metrics`` on a
  fresh registry), so no panel queries a metric that does not exist;
* the dashboard reaches Grafana as its sidecar expects, the ServiceMonitor scrapes the API's Service and the
  PodMonitor the workers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

import pytest
import yaml

from tests.support.deploy_promql import (
    PROMETHEUS_SERIES,
    RULE_TESTS,
    DashboardQuery,
    alert_rules,
    dashboard,
    dashboard_queries,
    exposed_series,
    grouping_labels,
    panels,
    prepare_rule_tests,
    runnable,
    selectors,
    write_rules_file,
)
from tests.support.deploy_tools import K8S, key, kustomize, run_tool

SEVERITIES = {"critical", "warning"}


@pytest.fixture(scope="module")
def example() -> list[dict[str, object]]:
    return kustomize(K8S / "overlays" / "example")


def rule_expressions() -> list[DashboardQuery]:
    return [DashboardQuery(f"alert {rule['alert']}", rule["expr"]) for rule in alert_rules()]


def every_expression() -> list[DashboardQuery]:
    return rule_expressions() + dashboard_queries()


# --- promtool -------------------------------------------------------------------------------------------------


def test_rules_pass_promtool_check_with_the_linter(tmp_path: Path) -> None:
    rules = write_rules_file(tmp_path)
    done = run_tool("promtool", "check", "rules", "--lint=all", "--lint-fatal", str(rules))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in done.stdout


def test_alert_unit_tests_pass(tmp_path: Path) -> None:
    tests = prepare_rule_tests(tmp_path)
    done = run_tool("promtool", "test", "rules", str(tests), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_a_wrong_expectation_fails_the_unit_tests(tmp_path: Path) -> None:
    """The harness really compares: a quiet case expected to fire makes promtool fail."""
    tests_file = prepare_rule_tests(tmp_path)
    tests = yaml.safe_load(tests_file.read_text())
    tests["tests"] = tests["tests"][:1]
    case = tests["tests"][0]["alert_rule_test"][0]
    assert case["exp_alerts"] == []
    case["exp_alerts"] = [{"exp_labels": {"severity": "critical"}}]
    tests_file.write_text(yaml.safe_dump(tests))
    done = run_tool("promtool", "test", "rules", str(tests_file), cwd=tmp_path)
    assert done.returncode != 0
    assert "FAILED" in done.stdout + done.stderr


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {rule["alert"] for rule in alert_rules()}
    assert alerts - firing == set(), "alerts never seen firing in the tests"
    assert alerts - quiet == set(), "alerts never seen quiet in the tests"
    assert (firing | quiet) - alerts == set(), "tests of alerts that do not exist"


def test_every_alert_says_how_bad_and_what_to_do() -> None:
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names))
    for rule in alert_rules():
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert set(rule["annotations"]) == {"summary", "description"}, rule["alert"]
        # Descriptions are static (the tests fill them in verbatim); values go in the summary.
        assert "{{" not in rule["annotations"]["description"], rule["alert"]
        assert re.fullmatch(r"Eligibility[A-Z][A-Za-z0-9]+", rule["alert"]), rule["alert"]


def test_dashboard_expressions_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses every dashboard query, written as a recording rule, with Grafana's variables filled in."""
    queries = dashboard_queries()
    rules = [{"record": f"dashboard:query_{i}", "expr": runnable(q.expr)} for i, q in enumerate(queries)]
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = run_tool("promtool", "check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


# --- names: every metric and label used exists ---------------------------------------------------------------


def unknown_names(queries: Iterable[DashboardQuery], exposed: dict[str, frozenset[str]]) -> list[str]:
    """Metric names, matcher labels and grouping labels the service does not expose, with where they are used."""
    known = {**exposed, **PROMETHEUS_SERIES}
    problems: list[str] = []
    for query in queries:
        expr = runnable(query.expr)
        found = selectors(expr)
        assert found, f"{query.where}: no metric in {expr!r}"
        labels_in_expr: set[str] = set()
        for selector in found:
            if selector.metric not in known:
                problems.append(f"{query.where}: metric {selector.metric!r} is not exposed")
                continue
            labels_in_expr |= known[selector.metric]
            problems += [
                f"{query.where}: {selector.metric} has no label {label!r}"
                for label in sorted(selector.labels - known[selector.metric])
            ]
        problems += [
            f"{query.where}: grouping by {label!r}, which none of its metrics has"
            for label in sorted(grouping_labels(expr) - labels_in_expr)
        ]
    return problems


def test_every_metric_and_label_used_is_exposed_by_the_service() -> None:
    assert unknown_names(every_expression(), exposed_series()) == []


def test_the_name_check_catches_misspelt_metrics_and_labels() -> None:
    exposed = exposed_series()
    wrong = [
        DashboardQuery("typo metric", "sum(rate(eligibilty_checks_total[5m]))"),
        DashboardQuery("typo label", 'sum(rate(eligibility_checks_total{state="active"}[5m]))'),
        DashboardQuery("typo grouping", "sum by (payer_id) (rate(eligibility_clearinghouse_retries_total[5m]))"),
        DashboardQuery("histogram base name", "eligibility_http_request_duration_seconds"),
    ]
    problems = unknown_names(wrong, exposed)
    assert len(problems) == 4, problems
    for query, problem in zip(wrong, problems, strict=True):
        assert problem.startswith(query.where)


def test_every_metric_of_the_service_is_on_the_dashboard() -> None:
    """A metric nobody can see is a metric nobody reads: each one has at least one panel."""
    used = {s.metric for q in dashboard_queries() for s in selectors(runnable(q.expr))}
    families = {re.sub(r"_(bucket|count|sum|total|created)$", "", name) for name in exposed_series()}
    shown = {re.sub(r"_(bucket|count|sum|total)$", "", name) for name in used}
    assert families - shown == set()


# --- dashboard shape and delivery ----------------------------------------------------------------------------


def test_dashboard_is_well_formed() -> None:
    board = dashboard()
    assert board["uid"] == "eligibility-svc"
    assert "id" not in board or board["id"] is None, "a provisioned dashboard carries no database id"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    all_panels = panels(board)
    ids = [p["id"] for p in all_panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in all_panels:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] < grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
    _assert_no_overlap(all_panels)


def _assert_no_overlap(all_panels: list[dict[str, object]]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in all_panels:
        grid = panel["gridPos"]
        assert isinstance(grid, dict)
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = str(panel["title"])


def test_dashboard_covers_what_operators_asked_for() -> None:
    rows = [p["title"] for p in dashboard()["panels"] if p["type"] == "row"]
    assert rows == [
        "Traffic",
        "Latency",
        "Payers",
        "AAA and X12",
        "Cache and Redis",
        "athenaNet write-backs",
        "Pre-visit batch",
    ]


def test_dashboard_reaches_grafana_through_the_sidecar(example: list[dict[str, object]]) -> None:
    by_key = {key(doc): doc for doc in example}
    configmap = by_key["ConfigMap/eligibility-svc-dashboard"]
    metadata = configmap["metadata"]
    assert isinstance(metadata, dict)
    assert metadata["labels"]["grafana_dashboard"] == "1"
    data = configmap["data"]
    assert isinstance(data, dict)
    assert json.loads(data["eligibility-svc.json"]) == dashboard()


def test_service_monitor_scrapes_the_api_service(example: list[dict[str, object]]) -> None:
    by_key = {key(doc): doc for doc in example}
    monitor = by_key["ServiceMonitor/eligibility-svc"]
    service = by_key["Service/eligibility-svc"]
    spec, service_spec = monitor["spec"], service["spec"]
    assert isinstance(spec, dict)
    assert isinstance(service_spec, dict)
    assert isinstance(service["metadata"], dict)
    wanted = spec["selector"]["matchLabels"].items()
    assert wanted <= service["metadata"]["labels"].items()
    port_names = {p["name"] for p in service_spec["ports"]}
    for endpoint in spec["endpoints"]:
        assert endpoint["port"] in port_names
        assert endpoint["path"] == "/metrics"
    # The Operator names the job after the Service, and the PodMonitor's relabeling names the workers' job;
    # the alerts and the dashboard count their targets by them.
    pods = by_key["PodMonitor/eligibility-svc-worker"]["spec"]
    assert isinstance(pods, dict)
    (endpoint,) = pods["podMetricsEndpoints"]
    worker_job = next(r["replacement"] for r in endpoint["relabelings"] if r["targetLabel"] == "job")
    jobs = {f'job="{service["metadata"]["name"]}"', f'job="{worker_job}"'}
    ups = [q for q in every_expression() if "up{" in q.expr]
    assert all(any(job in q.expr for job in jobs) for q in ups), [q.where for q in ups]
    assert {job for job in jobs if any(job in q.expr for q in ups)} == jobs, "each job's targets are counted"
    assert service["metadata"]["name"] == "eligibility-svc"
