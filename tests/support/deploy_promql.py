"""The PromQL we ship (alert rules, dashboard panels) and the metrics the service exposes.

* ``alert_rules()``, ``write_rules_file()``, ``prepare_rule_tests()``: the PrometheusRule's groups as the
  plain rule file ``promtool`` reads, and our promtool test file beside it;
* ``dashboard_queries()``: every PromQL expression of the Grafana dashboard (panel targets and the
  variables' ``label_values``), with Grafana's variables replaced so Prometheus can run them;
* ``selectors()`` / ``grouping_labels()``: a small PromQL scanner that finds the metric names, their label
  matchers and the labels of ``by``/``on`` clauses (syntax itself is left to promtool and Prometheus);
* ``exposed_series()``: every sample name the service exposes, with its label names, from a ``Metrics``
  on a fresh registry with one sample recorded in each metric.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics import Histogram, MetricWrapperBase, Summary
from prometheus_client.parser import text_string_to_metric_families

from eligibility_svc.metrics import Metrics
from tests.support.deploy_tools import MONITORING, load_documents

RULES_MANIFEST = MONITORING / "prometheusrule.yaml"
RULE_TESTS = MONITORING / "tests" / "alerts.test.yml"
RULES_FILE_NAME = "eligibility-svc.rules.yml"  # what the promtool test file names in rule_files
DASHBOARD = MONITORING / "dashboards" / "eligibility-svc.json"

# Series Prometheus makes itself for every target, and the labels it (or the Operator) adds to each series.
PROMETHEUS_SERIES = {"up": frozenset({"job", "instance"})}
TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod", "service", "container", "endpoint"})


# --- rules ---------------------------------------------------------------------------------------------


def rule_groups() -> list[dict[str, Any]]:
    return list(load_documents(RULES_MANIFEST)[0]["spec"]["groups"])


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in rule_groups() for rule in group["rules"] if "alert" in rule]


def write_rules_file(directory: Path) -> Path:
    """The PrometheusRule's groups as a Prometheus rule file in ``directory``."""
    path = directory / RULES_FILE_NAME
    path.write_text(yaml.safe_dump({"groups": rule_groups()}, sort_keys=False), encoding="utf-8")
    return path


def prepare_rule_tests(directory: Path) -> Path:
    """Our promtool test file in ``directory``, beside the rule file, each expected alert's description filled in.

    A rule's description is static text; writing it once more in every expected alert would only make the
    tests a copy of the rules.  The templated summaries are spelt out in the test file and checked.
    """
    write_rules_file(directory)
    descriptions = {rule["alert"]: rule["annotations"]["description"] for rule in alert_rules()}
    tests = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            for expected in check.get("exp_alerts") or []:
                annotations = expected.setdefault("exp_annotations", {})
                annotations.setdefault("description", descriptions[check["alertname"]])
    path = directory / RULE_TESTS.name
    path.write_text(yaml.safe_dump(tests, sort_keys=False), encoding="utf-8")
    return path


# --- dashboard -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DashboardQuery:
    where: str  # "panel 'Title' A" or "variable payer"
    expr: str  # as written in the dashboard
    panel: str = ""  # the panel's title, for a panel's query


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def panels(board: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    found: list[dict[str, Any]] = []
    for panel in (board or dashboard())["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


_LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>[a-zA-Z_]\w*)\)$")


def dashboard_queries(board: dict[str, Any] | None = None) -> list[DashboardQuery]:
    board = board or dashboard()
    queries = [
        DashboardQuery(f"panel {panel['title']!r} {target['refId']}", target["expr"], panel["title"])
        for panel in panels(board)
        for target in panel.get("targets", [])
    ]
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            match = _LABEL_VALUES.match(text.strip())
            assert match, f"variable {variable['name']}: only label_values(selector, label) is used, got {text!r}"
            queries.append(DashboardQuery(f"variable {variable['name']}", match["selector"]))
    return queries


def runnable(expr: str, rate_interval: str = "1m") -> str:
    """``expr`` with Grafana's variables replaced: what Prometheus receives with every payer selected."""
    return expr.replace("$__rate_interval", rate_interval).replace("$payer", ".*")


# --- the PromQL scanner ----------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<number>[0-9][0-9a-zA-Z.]*|\.[0-9]+)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=,(){}\[\]@])
  | (?P<space>\s+)
    """,
    re.VERBOSE,
)
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "start", "end", "atan2", "inf", "nan"})
_GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_AGGREGATIONS = frozenset(
    {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile"}
)


@dataclass(frozen=True)
class Selector:
    metric: str
    labels: frozenset[str]  # label names in the matchers


def _tokens(expr: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(expr):
        match = _TOKEN.match(expr, position)
        if match is None:
            raise ValueError(f"cannot read PromQL at {expr[position : position + 20]!r} in {expr!r}")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append((kind, match.group()))
        position = match.end()
    return tokens


def _matcher_labels(tokens: list[tuple[str, str]], start: int) -> tuple[frozenset[str], int]:
    """Label names of the matchers in ``{...}`` opening at ``start``; and the index after ``}``."""
    labels: set[str] = set()
    index = start + 1
    while tokens[index][1] != "}":
        kind, text = tokens[index]
        if kind == "ident" and tokens[index + 1][1] in {"=", "!=", "=~", "!~"}:
            labels.add(text)
        index += 1
    return frozenset(labels), index + 1


def _skip_brackets(tokens: list[tuple[str, str]], index: int) -> int:
    while tokens[index][1] != "]":
        index += 1
    return index + 1


def selectors(expr: str) -> list[Selector]:
    """The vector selectors in ``expr``: metric names with the label names their matchers use."""
    tokens = _tokens(expr)
    found: list[Selector] = []
    index = 0
    while index < len(tokens):
        kind, text = tokens[index]
        following = tokens[index + 1][1] if index + 1 < len(tokens) else ""
        if text == "[":
            index = _skip_brackets(tokens, index)
            continue
        if kind == "ident" and text in _GROUPING:
            index = _skip_parenthesised(tokens, index + 1) if following == "(" else index + 1
            continue
        is_metric = kind == "ident" and following != "(" and text not in _KEYWORDS and text not in _AGGREGATIONS
        if is_metric:
            labels: frozenset[str] = frozenset()
            index += 1
            if following == "{":
                labels, index = _matcher_labels(tokens, index)
            found.append(Selector(text, labels))
            continue
        if text == "{":  # a selector without a name: {__name__=~"..."}
            labels, index = _matcher_labels(tokens, index)
            found.append(Selector("", labels))
            continue
        index += 1
    return found


def _skip_parenthesised(tokens: list[tuple[str, str]], index: int) -> int:
    while tokens[index][1] != ")":
        index += 1
    return index + 1


def grouping_labels(expr: str) -> set[str]:
    """Labels named in ``by``/``without``/``on``/``ignoring``/``group_*`` clauses."""
    tokens = _tokens(expr)
    labels: set[str] = set()
    for index, (kind, text) in enumerate(tokens[:-1]):
        if kind == "ident" and text in _GROUPING and tokens[index + 1][1] == "(":
            end = _skip_parenthesised(tokens, index + 1)
            labels.update(t for k, t in tokens[index + 2 : end - 1] if k == "ident")
    return labels


# --- what the service exposes ------------------------------------------------------------------------------


def exposed_series() -> dict[str, frozenset[str]]:
    """Sample name → label names, for every sample a ``Metrics`` exposes once each metric has one sample."""
    metrics = Metrics(CollectorRegistry())
    for collector in vars(metrics).values():
        if isinstance(collector, MetricWrapperBase):
            _record_one(collector)
    text = generate_latest(metrics.registry).decode()
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return {name: frozenset(labels) for name, labels in series.items()}


def _record_one(collector: MetricWrapperBase) -> None:
    # Every label gets a value; the metric's own recording helpers bound values, not names.
    names: tuple[str, ...] = collector._labelnames  # prometheus_client keeps them there
    child: Any = collector.labels(*(["sample"] * len(names))) if names else collector
    if isinstance(collector, Histogram | Summary):
        child.observe(0.5)
    else:
        child.inc()
