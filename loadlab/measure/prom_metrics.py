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

A row costs one append to a list: what the rows add up to (the histograms' bucket
counts and sums, the counters) is computed in bulk, with numpy, when the endpoint
is scraped or 2,048 rows have come in (:class:`_RowTotals`). prometheus_client's
own ``Histogram.observe`` and ``Counter.inc`` take a lock and walk the buckets in
Python for every value: at 1,000 sessions that was ~1.5 % of the harness's CPU
(bench/web_tab_overhead.py --profile).
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
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, start_wsgi_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

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
        self._totals = _RowTotals()
        self._pending: deque[object] = deque()
        self._rows_lock = threading.Lock()
        self.registry.register(_RowCollector(self))
        self.registry.register(_NowCollector(self))

    # -- rows in ---------------------------------------------------------
    def observe(self, row: object) -> None:
        """Take one row of the run (rows of other types are ignored).

        Every row of the run comes through here, so it only queues the row: the
        deque's ``append`` is atomic, no lock is taken (a request row only if it was
        a cold start, all that is counted of requests).
        """
        kind = type(row)
        if kind is RequestSample:
            if not row.cold_start:  # type: ignore[attr-defined]
                return
        elif kind is PressureSample:
            self._pressure_sample(row)  # type: ignore[arg-type]
            return
        elif kind not in _TOTALLED:
            return
        pending = self._pending
        pending.append(row)
        if len(pending) >= _ADD_UP_EVERY:
            self.totals()

    def totals(self) -> _RowTotals:
        """What every row so far adds up to (the rows waiting are added up now)."""
        with self._rows_lock:  # one adder at a time; rows queued meanwhile wait
            pending = self._pending
            rows = [pending.popleft() for _ in range(len(pending))]
            self._totals.add(rows)
            return self._totals.copy()

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


_TOTALLED = frozenset({TurnRecord, RequestSample, SessionRecord})
_ADD_UP_EVERY = 2048
"""Rows waiting at most before they are added up (~1 ms of work on the load's loop)."""
_BOUNDS = np.asarray(LATENCY_BUCKETS_S, dtype="float64")


class _RowTotals:
    """The row-fed metrics as plain numbers: bucket counts, sums, counts by label."""

    def __init__(self) -> None:
        self.turn_buckets = np.zeros(len(_BOUNDS) + 1, dtype="int64")  # the last: > 30 s
        self.turn_sum = 0.0
        self.ttft_buckets = np.zeros(len(_BOUNDS) + 1, dtype="int64")
        self.ttft_sum = 0.0
        self.turns = {"ok": 0, "failed": 0}
        self.failed = dict.fromkeys([*ERROR_KINDS, "other"], 0)
        self.sessions = dict.fromkeys([*VERDICTS, "other"], 0)
        self.cold_starts = 0
        self.llm_calls = 0
        self.llm_throttles = 0

    def copy(self) -> _RowTotals:
        twin = _RowTotals()
        twin.__dict__.update(
            {
                k: v.copy() if isinstance(v, np.ndarray | dict) else v
                for k, v in self.__dict__.items()
            }
        )
        return twin

    def add(self, rows: list[object]) -> None:
        turns = [r for r in rows if isinstance(r, TurnRecord)]
        ok = [t for t in turns if t.ok]
        self.turns["ok"] += len(ok)
        self.turns["failed"] += len(turns) - len(ok)
        latency = np.fromiter((t.t_end - t.t_start for t in ok), "float64", len(ok))
        self.turn_sum += _into_buckets(self.turn_buckets, latency)
        ttft_ms = [t.ttft_ms for t in ok if t.ttft_ms is not None]
        self.ttft_sum += _into_buckets(
            self.ttft_buckets, np.asarray(ttft_ms, dtype="float64") / 1000.0
        )
        for t in turns:
            if not t.ok:
                kind = t.error_kind or ""
                self.failed[kind if kind in self.failed else "other"] += 1
            self.llm_calls += t.llm_calls
            self.llm_throttles += t.llm_throttles
        for r in rows:
            if isinstance(r, RequestSample):
                self.cold_starts += 1 if r.cold_start else 0
            elif isinstance(r, SessionRecord):
                self.sessions[r.verdict if r.verdict in self.sessions else "other"] += 1


def _into_buckets(counts: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> float:
    """Count ``values`` into Prometheus buckets (``le``: at most the bound); their sum."""
    if values.size:
        # side="left": a value equal to a bound counts in that bound's bucket
        counts += np.bincount(np.searchsorted(_BOUNDS, values, side="left"), minlength=len(counts))
    return float(values.sum())


class _RowCollector(Collector):
    """The row-fed families: latency histograms and the counters, from :class:`_RowTotals`."""

    def __init__(self, metrics: RunMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Any]:
        t = self._metrics.totals()
        yield _histogram(
            f"{PREFIX}_turn_seconds",
            "Latency of successful turns (request to the end of the answer), all attempts.",
            t.turn_buckets,
            t.turn_sum,
        )
        yield _histogram(
            f"{PREFIX}_ttft_seconds", "Time to first token of successful turns.", t.ttft_buckets,
            t.ttft_sum,
        )  # fmt: skip
        yield _counter(f"{PREFIX}_turns", "Turns finished, by outcome.", "outcome", t.turns)
        yield _counter(f"{PREFIX}_turns_failed", "Failed turns, by error kind.", "kind", t.failed)
        yield _counter(
            f"{PREFIX}_sessions", "Sessions ended, by continuity verdict.", "verdict", t.sessions
        )
        yield CounterMetricFamily(
            f"{PREFIX}_cold_starts",
            "Requests served by a new instance (pod or Lambda environment) on its first call.",
            value=t.cold_starts,
        )
        yield CounterMetricFamily(
            f"{PREFIX}_llm_calls",
            "LLM calls the agent reported making for the turns.",
            value=t.llm_calls,
        )
        yield CounterMetricFamily(
            f"{PREFIX}_llm_throttles",
            "LLM calls the agent reported answered 429 (rate limited).",
            value=t.llm_throttles,
        )


def _histogram(
    name: str, doc: str, counts: npt.NDArray[np.int64], total: float
) -> HistogramMetricFamily:
    cumulative = np.cumsum(counts)
    buckets = [(_le(b), float(n)) for b, n in zip(_BOUNDS, cumulative[:-1], strict=True)]
    return HistogramMetricFamily(
        name, doc, buckets=[*buckets, ("+Inf", float(cumulative[-1]))], sum_value=total
    )


def _le(bound: float) -> str:
    """A bucket's ``le`` label as prometheus_client writes it (``1.0``, ``0.25``)."""
    return str(floatToGoString(bound))  # type: ignore[no-untyped-call]


def _counter(name: str, doc: str, label: str, counts: dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for value, n in counts.items():
        family.add_metric([value], n)
    return family


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
