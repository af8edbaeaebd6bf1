"""The harness's live figures as Prometheus metrics (``--metrics-port``), for a real Prometheus.

A :class:`RunMetrics` holds one run's metrics in a registry of its own (no
module globals) and is fed from the rows the recorder already receives:

* per turn (``TurnRecord``): the turn latency and TTFT histograms (successful
  turns, as the report and the gates judge them), turns by outcome, failed
  turns by error kind, and the LLM calls and 429s the agent reported;
* per request (``RequestSample``): cold starts;
* per session (``SessionRecord``): sessions by verdict;
* per pressure sample (``PressureSample``): the latest downstream figures
  (LLM requests and 429s, DynamoDB throttles and consumed capacity), by source;

and, when scraped, reads what is true *now*: users, turns in flight, and the
faults active on the run's ``events.jsonl`` (written by this process, a chaos
experiment or ``loadlab demo``; read incrementally, only new lines).

A turn costs two histogram observations and two or three counter increments on
children bound in the constructor: nothing is allocated per turn beyond that.
A scrape that comes before the run is wired up, or after it is torn down, is
answered with what is known (never an exception in the run).

Every name starts with ``loadlab_run_`` so that the harness's series never mix
with the embedded stack's own (``loadlab_agent_*``, ``loadlab_llm_*``,
``loadlab_ddb_*``) in one Prometheus.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_wsgi_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from loadlab.errors import ConfigError
from loadlab.measure.fault_feed import FaultFeed
from loadlab.rows import (
    ERROR_KINDS,
    VERDICTS,
    PressureSample,
    RequestSample,
    SessionRecord,
    TurnRecord,
)

log = logging.getLogger("loadlab.metrics")

DEFAULT_HOST = "127.0.0.1"
PREFIX = "loadlab_run"
LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0,
)  # fmt: skip
"""Turn latency and TTFT buckets: a cached answer (0.1 s) to a slow LLM under a storm (30 s)."""

PRESSURE_SIGNALS: dict[str, str] = {
    # the embedded stack's (and any agent's) Prometheus series, as the sampler names them
    "loadlab_llm_requests_total": "llm_requests",
    "loadlab_llm_rate_limited_total": "llm_throttles",
    "loadlab_ddb_throttled_requests_total": "ddb_throttles",
    "loadlab_ddb_consumed_read_capacity_units_total": "ddb_read_units",
    "loadlab_ddb_consumed_write_capacity_units_total": "ddb_write_units",
    # CloudWatch, under AWS's names (Sum per period)
    "AWS/Bedrock/Invocations": "llm_requests",
    "AWS/Bedrock/InvocationThrottles": "llm_throttles",
    "AWS/DynamoDB/ThrottledRequests": "ddb_throttles",
    "AWS/DynamoDB/ConsumedReadCapacityUnits": "ddb_read_units",
    "AWS/DynamoDB/ConsumedWriteCapacityUnits": "ddb_write_units",
}
"""Which downstream samples feed ``loadlab_run_pressure{signal, source}``."""

Users = Callable[[], int]
InFlight = Callable[[], dict[str, int]]


def check_metrics_port(port: int, *, host: str = DEFAULT_HOST) -> None:
    """Refuse ``--metrics-port`` when it is out of range or already taken on ``host``.

    Port 0 means "no metrics endpoint" and is always accepted. Raises
    :class:`~loadlab.errors.ConfigError` (exit 2) naming the port and the fix.
    """
    if port == 0:
        return
    if not 1 <= port <= 65535:
        raise ConfigError(
            f"--metrics-port {port} out of range",
            hint="pass a port from 1 to 65535, or 0 for no metrics endpoint",
        )
    check_port_free("--metrics-port", host, port, example=DEFAULT_PORT_EXAMPLE)


DEFAULT_PORT_EXAMPLE = 9646


def check_port_free(flag: str, host: str, port: int, *, example: int) -> None:
    """Refuse ``flag``'s port when ``host:port`` cannot be bound now (in use, or not ours).

    Raises :class:`~loadlab.errors.ConfigError` (exit 2) naming the flag, the address
    and the fix, before anything starts.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise _port_error(flag, host, port, exc, example=example) from None


def _port_error(flag: str, host: str, port: int, exc: OSError, *, example: int) -> ConfigError:
    taken = exc.errno in (errno.EADDRINUSE, errno.EACCES)
    what = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc})"
    return ConfigError(
        f"{flag} {port}: {host}:{port} {what}",
        hint=f"pass a free port (e.g. {flag} {example}), or stop what listens there"
        if taken
        else f"pass another {flag}",
    )


class _NowCollector(Collector):
    """Gauges read at scrape time: users, turns in flight, active faults, pressure."""

    def __init__(self, metrics: RunMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Any]:
        return self._metrics.collect_now()


class RunMetrics:
    """One run's Prometheus metrics, fed by rows (``observe``) and read when scraped."""

    def __init__(
        self,
        *,
        users: Users | None = None,
        in_flight: InFlight | None = None,
        events_path: Path | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True) if registry is None else registry
        self._users = users
        self._in_flight = in_flight
        self._faults = FaultFeed(events_path)
        self._faults_lock = threading.Lock()
        self._pressure: dict[tuple[str, str], dict[str, float]] = {}
        self._pressure_lock = threading.Lock()
        r = self.registry
        self.turn_seconds = Histogram(
            f"{PREFIX}_turn_seconds",
            "Latency of successful turns (request to the end of the answer), all attempts.",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.ttft_seconds = Histogram(
            f"{PREFIX}_ttft_seconds",
            "Time to first token of successful turns.",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        turns = Counter(f"{PREFIX}_turns", "Turns finished, by outcome.", ["outcome"], registry=r)
        self._turns_ok = turns.labels("ok")
        self._turns_failed = turns.labels("failed")
        failed = Counter(
            f"{PREFIX}_turns_failed", "Failed turns, by error kind.", ["kind"], registry=r
        )
        self._failed_by_kind = {kind: failed.labels(kind) for kind in ERROR_KINDS}
        self._failed_other = failed.labels("other")
        sessions = Counter(
            f"{PREFIX}_sessions", "Sessions ended, by continuity verdict.", ["verdict"], registry=r
        )
        self._sessions = {verdict: sessions.labels(verdict) for verdict in VERDICTS}
        self._sessions_other = sessions.labels("other")
        self.cold_starts = Counter(
            f"{PREFIX}_cold_starts",
            "Requests served by a new instance (pod or Lambda environment) on its first call.",
            registry=r,
        )
        self.llm_calls = Counter(
            f"{PREFIX}_llm_calls", "LLM calls the agent reported making for the turns.", registry=r
        )
        self.llm_throttles = Counter(
            f"{PREFIX}_llm_throttles",
            "LLM calls the agent reported answered 429 (rate limited).",
            registry=r,
        )
        r.register(_NowCollector(self))

    # -- rows in ---------------------------------------------------------
    def observe(self, row: object) -> None:
        """Take one row of the run (rows of other types are ignored)."""
        kind = type(row)
        if kind is TurnRecord:
            self._turn(row)  # type: ignore[arg-type]
        elif kind is RequestSample:
            if row.cold_start:  # type: ignore[attr-defined]
                self.cold_starts.inc()
        elif kind is SessionRecord:
            self._sessions.get(row.verdict, self._sessions_other).inc()  # type: ignore[attr-defined]
        elif kind is PressureSample:
            self._pressure_sample(row)  # type: ignore[arg-type]

    def _turn(self, row: TurnRecord) -> None:
        if row.ok:
            self._turns_ok.inc()
            self.turn_seconds.observe(row.t_end - row.t_start)
            if row.ttft_ms is not None:
                self.ttft_seconds.observe(row.ttft_ms / 1000.0)
        else:
            self._turns_failed.inc()
            self._failed_by_kind.get(row.error_kind or "", self._failed_other).inc()
        if row.llm_calls:
            self.llm_calls.inc(row.llm_calls)
        if row.llm_throttles:
            self.llm_throttles.inc(row.llm_throttles)

    def observe_dicts(self, table: str, rows: Iterable[Any]) -> None:
        """Take rows forwarded by a worker as dicts (malformed ones are skipped)."""
        row_type = _FORWARDED.get(table)
        if row_type is None:
            return
        for raw in rows:
            if not isinstance(raw, dict):
                continue
            try:
                self.observe(row_type(**raw))
            except (TypeError, ValueError):
                continue

    def _pressure_sample(self, row: PressureSample) -> None:
        signal = PRESSURE_SIGNALS.get(row.metric)
        if signal is None:
            return
        if row.source == "cloudwatch" and '"Sum"' not in row.dimensions_json:
            return  # SampleCount, Average ... of the same metric
        with self._pressure_lock:
            series = self._pressure.setdefault((signal, row.source), {})
            series[f"{row.metric}{row.dimensions_json}"] = float(row.value)

    # -- read when scraped ----------------------------------------------
    def collect_now(self) -> list[Any]:
        """The gauges of this instant (each family present even when its reading fails)."""
        users = GaugeMetricFamily(f"{PREFIX}_users", "Locust users (sessions) running now.")
        users.add_metric([], float(_safely(self._users, 0)))
        in_flight = _safely(self._in_flight, {})
        turns = GaugeMetricFamily(
            f"{PREFIX}_turns_in_flight",
            "Turns sent whose answer has not finished, by stage "
            "(awaiting_first_token: the agent checkpointed and is calling the LLM).",
            labels=["stage"],
        )
        turns.add_metric(["all"], float(in_flight.get("turns_in_flight", 0)))
        turns.add_metric(["awaiting_first_token"], float(in_flight.get("awaiting_first_token", 0)))
        now = time.time()
        with self._faults_lock:
            faults = [(f.name, f.target or "", f.active(now)) for f in self._faults.faults()]
        started = len(faults)
        active = GaugeMetricFamily(
            f"{PREFIX}_faults_active", "Faults active now (within their lease, or still acting)."
        )
        active.add_metric([], float(sum(1 for *_, on in faults if on)))
        each = GaugeMetricFamily(
            f"{PREFIX}_fault_active",
            "1 while a fault is active (within its lease, or without one until its action "
            "returned), 0 after.",
            labels=["fault", "target"],
        )
        seen: dict[tuple[str, str], bool] = {}
        for name, target, on in faults:
            seen[(name, target)] = seen.get((name, target), False) or on
        for (name, target), on in seen.items():
            each.add_metric([name, target], 1.0 if on else 0.0)
        total = GaugeMetricFamily(f"{PREFIX}_faults_started", "Faults started so far in the run.")
        total.add_metric([], float(started))
        pressure = GaugeMetricFamily(
            f"{PREFIX}_pressure",
            "Latest downstream sample summed over its series: signal (llm_requests, "
            "llm_throttles, ddb_throttles, ddb_read_units, ddb_write_units) by source "
            "(prometheus: cumulative counters; cloudwatch: Sum over the last period).",
            labels=["signal", "source"],
        )
        with self._pressure_lock:
            sums = {key: sum(series.values()) for key, series in self._pressure.items()}
        for (signal, source), value in sorted(sums.items()):
            pressure.add_metric([signal, source], value)
        return [users, turns, active, each, total, pressure]

    # -- serving ---------------------------------------------------------
    def serve(self, port: int, *, host: str = DEFAULT_HOST) -> MetricsServer:
        """Serve ``/metrics`` on ``host:port`` in the background (ConfigError if taken)."""
        try:
            server, thread = start_wsgi_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise _port_error(
                "--metrics-port", host, port, exc, example=DEFAULT_PORT_EXAMPLE
            ) from None
        bound = int(server.server_port)  # port 0 picks a free one
        return MetricsServer(server=server, thread=thread, url=f"http://{host}:{bound}/metrics")


_FORWARDED: dict[str, type[Any]] = {
    "turns": TurnRecord,
    "requests": RequestSample,
    "sessions": SessionRecord,
    "pressure": PressureSample,
}


def _safely(read: Callable[[], Any] | None, default: Any) -> Any:
    """``read()``, or ``default`` when there is nothing to read yet or it fails."""
    if read is None:
        return default
    try:
        return read()
    except Exception:  # a scrape must never break the run it watches
        log.debug("metrics: reading a gauge failed", exc_info=True)
        return default


@dataclass(slots=True)
class MetricsServer:
    """The running ``/metrics`` endpoint; ``close()`` stops it."""

    server: Any
    thread: threading.Thread
    url: str

    def close(self) -> None:
        """Stop serving and release the port."""
        with contextlib.suppress(Exception):
            self.server.shutdown()
            self.server.server_close()


class MeteredSink:
    """A sink that hands every row on to ``sink`` and to the run's metrics."""

    def __init__(self, sink: Any, metrics: RunMetrics) -> None:
        self._sink = sink
        self._metrics = metrics

    def emit(self, row: Any) -> None:
        """Pass the row on, then count it."""
        self._sink.emit(row)
        self._metrics.observe(row)
