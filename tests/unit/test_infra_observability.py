"""The Prometheus rules and the Grafana dashboard name only metrics the code exports.

No Prometheus here: the rules file is parsed as YAML (its structure checked as
`promtool check rules` would, for the parts that matter), and every metric
name in an expression must be one the components define, or one
prometheus_client exports for every process, or Prometheus's own `up`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "infra/prometheus/rules.yml"
DASHBOARD = ROOT / "infra/grafana/community-live.json"

STANDARD = {
    "up",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_open_fds",
    "process_max_fds",
}
"""Prometheus's `up`; prometheus_client's process collector (every component)."""
HTTP_PREFIX = "community"
"""The services' request metrics (litestar's PrometheusConfig, prefix `community`)."""
HTTP_METRICS = {
    f"{HTTP_PREFIX}_requests_total",
    f"{HTTP_PREFIX}_requests_error_total",
    f"{HTTP_PREFIX}_requests_in_progress",
    f"{HTTP_PREFIX}_request_duration_seconds",
}
PROMQL_WORDS = {
    "sum", "rate", "increase", "irate", "avg", "max", "min", "count", "by", "without", "on",
    "ignoring", "group_left", "group_right", "and", "or", "unless", "histogram_quantile",
    "clamp_min", "clamp_max", "abs", "topk", "bottomk", "offset", "bool", "label_replace",
    "avg_over_time", "max_over_time", "delta", "deriv", "absent", "vector", "scalar",
}  # fmt: skip


def defined_metrics() -> set[str]:
    """Every metric name created with prometheus_client in the components' sources."""
    names = set(STANDARD)
    pattern = re.compile(r"\b(?:Counter|Gauge|Histogram|Summary)\(\s*\"([a-z_:][a-z0-9_:]*)\"")
    sources = [*ROOT.glob("shared/src/**/*.py"), *ROOT.glob("gateway/src/**/*.py")]
    sources += ROOT.glob("services/*/src/**/*.py")
    for path in sources:
        names |= set(pattern.findall(path.read_text()))
    web = (ROOT / "shared/src/community_shared/web.py").read_text()
    assert f'prefix="{HTTP_PREFIX}"' in web
    return names | HTTP_METRICS


def metrics_in(expr: str) -> set[str]:
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values
    expr = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # label lists
    expr = re.sub(r"\{[^}]*\}", "", expr)  # matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    tokens = set(re.findall(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)", expr))
    return {t for t in tokens if t not in PROMQL_WORDS}


def base_name(metric: str) -> str:
    for suffix in ("_bucket", "_count", "_sum"):
        if metric.endswith(suffix) and metric[: -len(suffix)] in HTTP_METRICS:
            return metric[: -len(suffix)]
    return metric


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load(RULES.read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def test_rules_are_well_formed(rules: list[dict[str, Any]]) -> None:
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)) and len(names) >= 10
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]


def test_every_metric_in_the_rules_exists(rules: list[dict[str, Any]]) -> None:
    known = defined_metrics()
    for rule in rules:
        unknown = {base_name(m) for m in metrics_in(rule["expr"])} - known
        assert not unknown, f"{rule['alert']}: {unknown}"


def test_every_metric_on_the_dashboard_exists() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    known = defined_metrics()
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 15
    for expr in exprs:
        unknown = {base_name(m) for m in metrics_in(expr)} - known
        assert not unknown, f"{expr}: {unknown}"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_the_checker_sees_a_misspelt_metric() -> None:
    assert metrics_in('sum by (job) (rate(gateway_conections{job="x"}[5m])) > 0') == {
        "gateway_conections"
    }


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_rules() -> None:
    checked = subprocess.run(
        ["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
