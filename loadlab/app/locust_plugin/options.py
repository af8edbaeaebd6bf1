"""loadlab's options on Locust's command line (they show in ``locust --help`` and the web UI)."""

from __future__ import annotations

import os
from typing import Any

from loadlab.measure.pressure import add_pressure_arguments


def add_arguments(parser: Any) -> None:
    """Add loadlab's options to Locust's argument parser."""
    group = parser.add_argument_group("loadlab")
    group.add_argument(
        "--scenario",
        default=os.environ.get("LOADLAB_SCENARIO", ""),
        help="loadlab scenario file or name (personas, turns, think time, load shape); "
        "default: ci_smoke, a 20-shopper smoke test. Env: LOADLAB_SCENARIO",
    )
    group.add_argument(
        "--run-dir",
        default="",
        help="write the run to exactly this directory (default: a new runs/<UTC time>-<name>/)",
    )
    group.add_argument(
        "--runs-root", default="runs", help="parent of new run directories (default: runs)"
    )
    group.add_argument(
        "--peak-users",
        type=int,
        default=0,
        help="override the scenario's peak concurrent sessions (0 = as in the scenario)",
    )
    group.add_argument(
        "--time-scale",
        type=float,
        default=0.0,
        help="override the scenario's time_scale (0 = as in the scenario)",
    )
    group.add_argument(
        "--lambda-function",
        default=os.environ.get("LOADLAB_TARGET_LAMBDA_FUNCTION", ""),
        help="play the scenario against this Lambda function through the Invoke API "
        "(--host is then the Lambda API endpoint; use loadlab/app/lambda_locustfile.py); "
        "Env: LOADLAB_TARGET_LAMBDA_FUNCTION",
    )
    group.add_argument(
        "--progress-interval",
        type=float,
        default=5.0,
        help="seconds between loadlab progress lines on stderr (0 = none)",
    )
    group.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("LOADLAB_METRICS_PORT", "0") or 0),
        help="serve the run's Prometheus metrics on this port (master only; 0 = none). "
        "Env: LOADLAB_METRICS_PORT",
    )
    group.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="address of the metrics endpoint (default 127.0.0.1)",
    )
    group.add_argument(
        "--serve-until-interrupted",
        action="store_true",
        help="with the web UI: once the load stops, seal the run and keep serving the UI "
        "(its loadlab tab links to the report when it is written) until SIGINT; "
        "`loadlab run --web` sets it (default: close the UI when the load stops)",
    )
    add_pressure_arguments(parser)
