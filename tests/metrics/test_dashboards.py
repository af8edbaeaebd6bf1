"""dashboards/: the generated JSON is up to date, the CloudWatch body uses AWS's names,
and the example prometheus.yml is a valid configuration for a real promtool."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from loadlab.measure.pressure import AWS_METRICS
from loadlab.measure.prom_metrics import RunMetrics

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "dashboards"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dashboards_generate", DASHBOARDS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def promtool() -> str:
    """Debian's promtool; CI installs it (scripts/bootstrap), a developer may not have it."""
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing in CI: scripts/bootstrap installs Debian's prometheus")
        pytest.skip("promtool not installed (apt-get install prometheus, or run scripts/bootstrap)")
    return found


def test_the_committed_dashboards_are_what_the_generator_writes() -> None:
    generate = load_generator()
    for path, text in generate.render().items():
        assert path.read_text() == text, f"{path.name} is stale: run dashboards/generate.py"
    assert generate.main(["--check"]) == 0


def test_the_grafana_dashboard_has_every_figure_and_faults_as_annotations() -> None:
    board = json.loads((DASHBOARDS / "loadlab-run.json").read_text())
    panels = [p for p in board["panels"] if p["type"] != "row"]
    exprs = " ".join(t["expr"] for p in panels for t in p["targets"])
    for metric in (
        "loadlab_run_users", "loadlab_run_turns_in_flight", "loadlab_run_turn_seconds_bucket",
        "loadlab_run_ttft_seconds_bucket", "loadlab_run_sessions_total",
        "loadlab_run_turns_failed_total", "loadlab_run_cold_starts_total",
        "loadlab_run_faults_active", "loadlab_ddb_throttled_requests_total",
        "loadlab_ddb_consumed_read_capacity_units_total", "loadlab_llm_rate_limited_total",
        "loadlab_run_llm_calls_total", "loadlab_agent_turn_seconds_bucket",
    ):  # fmt: skip
        assert metric in exprs, metric
    assert all(p["datasource"]["uid"] == "${datasource}" for p in panels)
    (faults,) = board["annotations"]["list"]
    assert "loadlab_run_fault_active" in faults["expr"] and faults["titleFormat"] == "{{fault}}"


def test_every_harness_series_a_panel_names_is_one_the_harness_serves() -> None:
    generate = load_generator()
    served = {
        sample.name for family in RunMetrics().registry.collect() for sample in family.samples
    } | {family.name for family in RunMetrics().registry.collect()}
    for title, expr in generate.panel_queries():
        for word in re.findall(r"loadlab_run_\w+", expr):
            assert word in served, f"{title}: {word} is not served by the harness"


def test_the_cloudwatch_body_uses_the_metrics_loadlab_knows_aws_by() -> None:
    body = json.loads((DASHBOARDS / "cloudwatch-run.json").read_text())
    known = {(spec.namespace, spec.name) for spec in AWS_METRICS}
    generate = load_generator()
    assert len(body["widgets"]) == len(generate.PANELS)
    kinds = {w["type"] for w in body["widgets"]}
    assert kinds == {"metric", "log", "text"}
    for widget in body["widgets"]:
        assert {"x", "y", "width", "height", "properties"} <= set(widget)
        if widget["type"] == "metric":
            for metric in widget["properties"]["metrics"]:
                assert (metric[0], metric[1]) in known, metric
                assert isinstance(metric[-1], dict) and "stat" in metric[-1]
                assert "{" not in json.dumps(metric[:-1]), f"unfilled placeholder in {metric}"
        if widget["type"] == "log":
            assert widget["properties"]["query"].startswith("SOURCE '/aws/lambda/loadlab-agent'")
    custom = generate.cloudwatch_dashboard(
        function="shop", table="carts", model="m", region="eu-west-1"
    )
    text = json.dumps(custom)
    assert '"shop"' in text and '"carts"' in text and "loadlab-agent" not in text


def test_promtool_accepts_the_example_prometheus_config() -> None:
    done = subprocess.run(
        [promtool(), "check", "config", str(DASHBOARDS / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
