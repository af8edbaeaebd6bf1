"""``--metrics-port``: the run's Prometheus endpoint, served from the Locust master.

:func:`start_metrics` binds the port before anything is recorded (a port in use
ends the process with exit 2 before the load starts) and returns the
:class:`~loadlab.measure.prom_metrics.RunMetrics` the plugin's sinks feed; a
``--worker`` serves none (its rows reach the master's metrics with its batches).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loadlab.measure.prom_metrics import MetricsServer, RunMetrics
from loadlab.measure.rundir import RunDirectory


@dataclass(slots=True)
class ServedMetrics:
    """The run's metrics and the endpoint serving them."""

    metrics: RunMetrics
    server: MetricsServer

    def take_forwarded(self, data: Any) -> None:
        """Count a worker's batch of rows (after the recorder took it)."""
        if isinstance(data, dict):
            for table, rows in data.items():
                if isinstance(rows, list):
                    self.metrics.observe_dicts(str(table), rows)

    def close(self) -> None:
        """Stop the endpoint (the last thing a run does)."""
        self.server.close()


def start_metrics(
    environment: Any, options: Any, run_dir: RunDirectory, in_flight: Callable[[], dict[str, int]]
) -> ServedMetrics | None:
    """Serve the run's metrics if ``--metrics-port`` asks for them (raises ConfigError if taken)."""
    port = int(getattr(options, "metrics_port", 0) or 0)
    if port == 0:
        return None
    host = str(getattr(options, "metrics_host", "") or "127.0.0.1")
    metrics = RunMetrics(
        users=lambda: int(getattr(environment.runner, "user_count", 0) or 0),
        in_flight=in_flight,
        events_path=run_dir.events,
    )
    server = metrics.serve(port, host=host)
    sys.stderr.write(f"loadlab: Prometheus metrics on {server.url}\n")
    return ServedMetrics(metrics=metrics, server=server)
