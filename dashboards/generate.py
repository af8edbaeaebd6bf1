"""Generate loadlab's dashboards from one list of panels.

    .venv/bin/python dashboards/generate.py           # rewrite the JSON files
    .venv/bin/python dashboards/generate.py --check   # exit 1 if a committed file is stale

Writes, next to this file:

* ``loadlab-run.json`` - a Grafana dashboard (built with grafana-foundation-sdk)
  on a Prometheus data source that scrapes the harness (``--metrics-port``) and
  the embedded stack's file_sd targets (see ``prometheus.yml``); faults are
  annotations;
* ``cloudwatch-run.json`` - a CloudWatch dashboard body with the same panels on
  AWS's metric names, for runs against AWS (``aws cloudwatch put-dashboard
  --dashboard-name loadlab-run --dashboard-body file://dashboards/cloudwatch-run.json``;
  generate it for your resources with ``--function``, ``--table``, ``--model``,
  ``--region``).

Every PromQL panel query is run against a real Prometheus by
``tests/metrics/test_prometheus_dashboard.py``; ``$__rate_interval`` is Grafana's
own rate window.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, GridPos

HERE = Path(__file__).resolve().parent
GRAFANA_FILE = HERE / "loadlab-run.json"
CLOUDWATCH_FILE = HERE / "cloudwatch-run.json"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE = "$__rate_interval"


@dataclass(frozen=True)
class Query:
    """One PromQL series of a panel, with its legend."""

    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    """A panel: its PromQL queries (Grafana) and AWS metrics (CloudWatch) for the same figure.

    ``aws`` items are CloudWatch metric arrays with ``{FunctionName}``, ``{TableName}``
    and ``{ModelId}`` placeholders; ``aws_logs`` a Logs Insights query on the
    function's log group; ``aws_note`` a text widget where AWS has no such metric.
    """

    row: str
    title: str
    description: str
    unit: str
    queries: tuple[Query, ...]
    kind: str = "timeseries"
    aws: tuple[tuple[Any, ...], ...] = ()
    aws_logs: str | None = None
    aws_note: str | None = None
    aws_stat: str = "Sum"
    stacked: bool = False
    legend_placement: str = field(default="bottom")


def _quantiles(metric: str, *, by: str = "") -> tuple[Query, ...]:
    group = f"le, {by}" if by else "le"
    suffix = f" {{{{{by}}}}}" if by else ""
    return tuple(
        Query(
            f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket[{RATE}])))",
            f"P{round(q * 100)}{suffix}",
        )
        for q in (0.5, 0.95, 0.99)
    )


def _zero_while_up(expr: str, witness: str) -> str:
    """``expr``, or 0 while ``witness`` is scraped.

    A labelled counter has no series before its first increment: without this, a
    run that never throttled would show "no data" instead of 0.
    """
    return f"({expr}) or on() (0 * sum({witness}))"


PANELS: tuple[Panel, ...] = (
    # -- load ----------------------------------------------------------------------
    Panel(
        row="Load",
        title="Users and turns in flight",
        description="Locust users (sessions) running, and turns sent whose answer has not "
        "finished (awaiting_first_token: the agent checkpointed and is calling the LLM).",
        unit="short",
        queries=(
            Query("loadlab_run_users", "users"),
            Query("loadlab_run_turns_in_flight", "in flight: {{stage}}"),
        ),
        aws=(("AWS/Lambda", "ConcurrentExecutions", "FunctionName", "{FunctionName}"),),
        aws_stat="Maximum",
    ),
    Panel(
        row="Load",
        title="Turns per second",
        description="Turns finished per second, by outcome.",
        unit="reqps",
        queries=(
            Query(f"sum by (outcome) (rate(loadlab_run_turns_total[{RATE}]))", "{{outcome}}"),
        ),
        aws=(
            ("AWS/Lambda", "Invocations", "FunctionName", "{FunctionName}"),
            ("AWS/Lambda", "Errors", "FunctionName", "{FunctionName}"),
        ),
        stacked=True,
    ),
    # -- latency -------------------------------------------------------------------
    Panel(
        row="Latency",
        title="Turn latency (shopper's view)",
        description="P50/P95/P99 of successful turns, from the request to the end of the "
        "answer, as the harness measured them.",
        unit="s",
        queries=_quantiles("loadlab_run_turn_seconds"),
        aws=tuple(
            ("AWS/Lambda", "Duration", "FunctionName", "{FunctionName}", {"stat": stat})
            for stat in ("p50", "p95", "p99")
        ),
    ),
    Panel(
        row="Latency",
        title="Time to first token",
        description="P50/P95/P99 time to the first token of successful turns.",
        unit="s",
        queries=_quantiles("loadlab_run_ttft_seconds"),
        aws=tuple(
            ("AWS/Bedrock", "InvocationLatency", "ModelId", "{ModelId}", {"stat": stat})
            for stat in ("p50", "p99")
        ),
    ),
    Panel(
        row="Latency",
        title="Agent turn latency P99 by pod",
        description="The agent's own P99 per pod (each pod scraped on its own port through "
        "the stack's file_sd targets): a slow pod stands out.",
        unit="s",
        queries=(
            Query(
                "histogram_quantile(0.99, sum by (le, pod) "
                f"(rate(loadlab_agent_turn_seconds_bucket[{RATE}])))",
                "{{pod}}",
            ),
        ),
        aws=(("AWS/Lambda", "Duration", "FunctionName", "{FunctionName}", {"stat": "p99"}),),
    ),
    # -- sessions ------------------------------------------------------------------
    Panel(
        row="Sessions",
        title="Sessions by verdict",
        description="Sessions ended so far: clean, resumed from the checkpoint, restarted "
        "(state lost), duplicated (a side effect applied twice), failed.",
        unit="short",
        kind="stat",
        queries=(Query("sum by (verdict) (loadlab_run_sessions_total)", "{{verdict}}"),),
        aws_note="Session verdicts are loadlab's own (the continuity oracle): see the "
        "run's report.html or its `--metrics-port` endpoint; AWS has no such metric.",
    ),
    Panel(
        row="Sessions",
        title="Failed turns by error kind",
        description="Failed turns per second: connect, timeout, reset, http_status, "
        "malformed, agent_error, auth, throttled, deadline.",
        unit="reqps",
        queries=(
            Query(f"sum by (kind) (rate(loadlab_run_turns_failed_total[{RATE}]))", "{{kind}}"),
        ),
        aws=(
            ("AWS/Lambda", "Errors", "FunctionName", "{FunctionName}"),
            ("AWS/Lambda", "Throttles", "FunctionName", "{FunctionName}"),
        ),
        stacked=True,
    ),
    # -- faults and cold starts ----------------------------------------------------
    Panel(
        row="Faults and cold starts",
        title="Active faults",
        description="Faults active now (from the run's events.jsonl: started, not ended, "
        "lease not expired); each fault is also an annotation on every panel.",
        unit="short",
        queries=(
            Query("loadlab_run_faults_active", "active"),
            Query("loadlab_run_faults_started", "started so far"),
        ),
        aws=(("AWS/Lambda", "Throttles", "FunctionName", "{FunctionName}"),),
    ),
    Panel(
        row="Faults and cold starts",
        title="Cold starts and instances alive",
        description="Requests served by a new pod or Lambda environment (harness view and "
        "agents' own count), and agent pods answering scrapes.",
        unit="short",
        queries=(
            Query(f"increase(loadlab_run_cold_starts_total[{RATE}])", "cold starts (harness)"),
            Query("sum(loadlab_agent_cold_starts_total)", "cold starts (agents, total)"),
            Query('count(up{component="agent"} == 1)', "pods alive"),
        ),
        aws_logs="filter @type = 'REPORT' and ispresent(@initDuration)"
        " | stats count(*) as coldStarts, avg(@initDuration) as initMs by bin(1m)",
    ),
    # -- downstream ----------------------------------------------------------------
    Panel(
        row="Downstream",
        title="DynamoDB consumed capacity",
        description="Read and write capacity units consumed per second (the DynamoDB gate's "
        "metrics, by table).",
        unit="short",
        queries=(
            Query(
                f"sum by (table) (rate(loadlab_ddb_consumed_read_capacity_units_total[{RATE}]))",
                "RCU {{table}}",
            ),
            Query(
                f"sum by (table) (rate(loadlab_ddb_consumed_write_capacity_units_total[{RATE}]))",
                "WCU {{table}}",
            ),
        ),
        aws=(
            ("AWS/DynamoDB", "ConsumedReadCapacityUnits", "TableName", "{TableName}"),
            ("AWS/DynamoDB", "ConsumedWriteCapacityUnits", "TableName", "{TableName}"),
        ),
    ),
    Panel(
        row="Downstream",
        title="DynamoDB throttles",
        description="Requests refused for lack of capacity (ThrottledRequests) per second; "
        "0 while the gate answers and throttles nothing.",
        unit="reqps",
        queries=(
            Query(
                _zero_while_up(
                    f"sum(rate(loadlab_ddb_throttled_requests_total[{RATE}]))",
                    "loadlab_ddb_requests_total",
                ),
                "throttled requests",
            ),
        ),
        aws=(
            ("AWS/DynamoDB", "ThrottledRequests", "TableName", "{TableName}"),
            ("AWS/DynamoDB", "ReadThrottleEvents", "TableName", "{TableName}"),
            ("AWS/DynamoDB", "WriteThrottleEvents", "TableName", "{TableName}"),
        ),
    ),
    Panel(
        row="Downstream",
        title="LLM calls and 429s",
        description="LLM calls per second and those answered 429 (rate limited): as the "
        "agents reported them to the harness, and as the LLM simulator counted them.",
        unit="reqps",
        queries=(
            Query(f"rate(loadlab_run_llm_calls_total[{RATE}])", "calls (agents)"),
            Query(f"rate(loadlab_run_llm_throttles_total[{RATE}])", "429s (agents)"),
            Query(f"sum(rate(loadlab_llm_requests_total[{RATE}]))", "requests (LLM)"),
            Query(
                _zero_while_up(
                    f"sum(rate(loadlab_llm_rate_limited_total[{RATE}]))",
                    "loadlab_llm_requests_total",
                ),
                "429s (LLM)",
            ),
        ),
        aws=(
            ("AWS/Bedrock", "Invocations", "ModelId", "{ModelId}"),
            ("AWS/Bedrock", "InvocationThrottles", "ModelId", "{ModelId}"),
        ),
    ),
    Panel(
        row="Downstream",
        title="LLM tokens",
        description="Prompt and completion tokens per second (LLM simulator).",
        unit="short",
        queries=(
            Query(f"sum(rate(loadlab_llm_prompt_tokens_total[{RATE}]))", "prompt"),
            Query(f"sum(rate(loadlab_llm_completion_tokens_total[{RATE}]))", "completion"),
        ),
        aws=(
            ("AWS/Bedrock", "InputTokenCount", "ModelId", "{ModelId}"),
            ("AWS/Bedrock", "OutputTokenCount", "ModelId", "{ModelId}"),
        ),
    ),
)

FAULT_ANNOTATION = "max by (fault, target) (loadlab_run_fault_active) == 1"


def panel_queries() -> list[tuple[str, str]]:
    """``(panel title, PromQL)`` for every query of every panel."""
    return [(p.title, q.expr) for p in PANELS for q in p.queries]


# -- Grafana -------------------------------------------------------------------------


def grafana_dashboard() -> dict[str, Any]:
    """The Grafana dashboard model, as JSON-ready dicts."""
    board = (
        dashboard.Dashboard("loadlab run")
        .uid("loadlab-run")
        .description(
            "One loadlab run live: load, latency and TTFT, session verdicts, faults, cold "
            "starts, DynamoDB and LLM pressure. Generated by dashboards/generate.py."
        )
        .tags(["loadlab"])
        .refresh("5s")
        .time("now-30m", "now")
        .timezone("utc")
        .with_variable(
            dashboard.DatasourceVariable("datasource").label("Prometheus").type("prometheus")
        )
        .annotation(
            dashboard.AnnotationQuery()
            .name("Faults")
            .datasource(DATASOURCE)
            .enable(True)
            .icon_color("red")
            .expr(FAULT_ANNOTATION)
        )
    )
    rows: dict[str, list[Panel]] = {}
    for panel in PANELS:
        rows.setdefault(panel.row, []).append(panel)
    y = 0
    for row, panels in rows.items():
        board = board.with_row(dashboard.Row(row).grid_pos(GridPos(h=1, w=24, x=0, y=y)))
        y += 1
        for i, panel in enumerate(panels):
            x = 0 if i % 2 == 0 else 12
            board = board.with_panel(_grafana_panel(panel, GridPos(h=8, w=12, x=x, y=y)))
            if i % 2 == 1 or i == len(panels) - 1:
                y += 8
    model = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    for item in model["panels"]:
        if item.get("options") is None:
            item.pop("options", None)  # the panel's defaults
    annotation = model["annotations"]["list"][-1]
    annotation["titleFormat"] = "{{fault}}"
    annotation["textFormat"] = "target {{target}}"
    return dict(model)


def _grafana_panel(panel: Panel, pos: GridPos) -> Any:
    builder: Any = stat.Panel() if panel.kind == "stat" else timeseries.Panel()
    builder = (
        builder.title(panel.title)
        .description(panel.description)
        .datasource(DATASOURCE)
        .unit(panel.unit)
        .grid_pos(pos)
    )
    for ref, query in zip("ABCDEFGH", panel.queries, strict=False):
        builder = builder.with_target(
            prometheus.Dataquery()
            .expr(query.expr)
            .legend_format(query.legend)
            .ref_id(ref)
            .datasource(DATASOURCE)
        )
    return builder


# -- CloudWatch ----------------------------------------------------------------------


def cloudwatch_dashboard(*, function: str, table: str, model: str, region: str) -> dict[str, Any]:
    """A CloudWatch dashboard body (PutDashboard) with the same panels on AWS's names."""
    names = {"FunctionName": function, "TableName": table, "ModelId": model}
    widgets: list[dict[str, Any]] = []
    x = y = 0
    for panel in PANELS:
        widget: dict[str, Any]
        if panel.aws:
            metrics = [
                [_fill(item, names) for item in metric[:4]]
                + [dict(metric[4]) if len(metric) > 4 else {"stat": panel.aws_stat}]
                for metric in panel.aws
            ]
            widget = {
                "type": "metric",
                "properties": {
                    "title": panel.title,
                    "region": region,
                    "view": "timeSeries",
                    "stacked": panel.stacked,
                    "period": 60,
                    "metrics": metrics,
                },
            }
        elif panel.aws_logs is not None:
            widget = {
                "type": "log",
                "properties": {
                    "title": panel.title,
                    "region": region,
                    "view": "timeSeries",
                    "query": f"SOURCE '/aws/lambda/{function}' | {panel.aws_logs}",
                },
            }
        else:
            widget = {
                "type": "text",
                "properties": {"markdown": f"### {panel.title}\n\n{panel.aws_note or ''}"},
            }
        widgets.append({"x": x, "y": y, "width": 12, "height": 6, **widget})
        x = 12 - x
        y += 6 if x == 0 else 0
    return {"start": "-PT30M", "periodOverride": "inherit", "widgets": widgets}


def _fill(item: Any, names: dict[str, str]) -> Any:
    return item.format_map(names) if isinstance(item, str) else item


# -- files ---------------------------------------------------------------------------


def render(
    *,
    function: str = "loadlab-agent",
    table: str = "loadlab-checkpoints",
    model: str = "anthropic.claude-3-5-haiku-20241022-v1:0",
    region: str = "us-east-1",
) -> dict[Path, str]:
    """Every generated file and its text."""
    cloudwatch = cloudwatch_dashboard(function=function, table=table, model=model, region=region)
    return {
        GRAFANA_FILE: json.dumps(grafana_dashboard(), indent=2, sort_keys=True) + "\n",
        CLOUDWATCH_FILE: json.dumps(cloudwatch, indent=2) + "\n",
    }


def main(argv: list[str] | None = None) -> int:
    """Write the dashboards, or with ``--check`` say which committed ones are stale."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    parser.add_argument("--function", default="loadlab-agent", help="Lambda function name")
    parser.add_argument("--table", default="loadlab-checkpoints", help="DynamoDB table")
    parser.add_argument(
        "--model", default="anthropic.claude-3-5-haiku-20241022-v1:0", help="Bedrock model id"
    )
    parser.add_argument("--region", default="us-east-1", help="AWS region")
    args = parser.parse_args(argv)
    files = render(function=args.function, table=args.table, model=args.model, region=args.region)
    stale = [p for p, text in files.items() if not p.exists() or p.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path} is stale: run dashboards/generate.py", file=sys.stderr)
        return 1 if stale else 0
    for path, text in files.items():
        path.write_text(text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
