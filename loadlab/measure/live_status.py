"""The live status of a run: what chaos probes read while the load is running.

:class:`LiveWindow` watches the rows going to the recorder (turns and sessions,
from this process or forwarded by workers) and keeps a rolling window of turn
latencies and failures plus the verdict counts so far. ``ProgressReporter``
writes its snapshot to ``live.json`` (format: :data:`loadlab.rows.LIVE_STATUS_FILE`)
once a second. It also counts what the web UI's loadlab tab shows beside them:
cold starts and the environments (pods, Lambda execution environments) that
answered lately, from request rows, and the downstream counters of
:class:`PressureTotals`.
"""

from __future__ import annotations

import json
import math
import time
from array import array
from collections import Counter, deque
from typing import Any

import numpy as np
import numpy.typing as npt

from loadlab.measure.offload import loop_lock
from loadlab.rows import PressureSample, RequestSample, SessionRecord, TurnRecord

_QUANTILES = {
    "p50_ms": 50.0,
    "p95_ms": 95.0,
    "p99_ms": 99.0,
    "p999_ms": 99.9,
    "ttft_p50_ms": 50.0,
    "ttft_p99_ms": 99.0,
}
_COUNTED = {
    "max_restarted": "restarted",
    "max_duplicated": "duplicated",
    "max_failed_sessions": "failed",
}


class LiveWindow:
    """Rolling turn latencies and failures over ``window_s``, and verdicts so far."""

    def __init__(self, *, window_s: float = 30.0, max_samples: int = 200_000) -> None:
        self.window_s = window_s
        self._lock = loop_lock()
        # the window's turns (t_end, ok, latency, TTFT) as columns of machine numbers;
        # with the failures among them counted as they come and go, the snapshot and
        # the tab's percentiles cost a copy of memory, not a Python loop over tuples
        # (that loop stopped every user for ~25 ms a second at 1,000 turns/s)
        self._turns = _TurnColumns(max_samples)
        self._window_failures = 0
        # every turn so far (bounded), for stop conditions: t_end, latency, ok, TTFT, intent
        self._history: deque[tuple[float, float, bool, float | None, str]] = deque(
            maxlen=max_samples
        )
        self._session_ends: deque[tuple[float, str]] = deque(maxlen=max_samples)
        self._verdicts: Counter[str] = Counter()
        self.turns_done = 0
        self.turns_failed = 0
        self.turns_refused = 0  # failed because the agent refused our credentials
        # (answer time, instance id) of requests in the window: the environments alive
        self._instances: deque[tuple[float, str]] = deque(maxlen=max_samples)
        self._alive: Counter[str] = Counter()  # their requests in the deque, by instance
        self.cold_starts = 0
        self.pressure = PressureTotals()

    def observe(self, row: object) -> None:
        """Take a turn, session, request or pressure row (other rows are ignored)."""
        # Every turn brings a request row and a turn row: those two are told first.
        if row.__class__ is RequestSample:
            self._request(row.t_start + row.latency_ms / 1000.0, row.instance_id, row.cold_start)
        elif isinstance(row, TurnRecord):
            self._turn(
                row.t_end,
                (row.t_end - row.t_start) * 1000.0,
                row.ok,
                row.error_kind,
                ttft_ms=row.ttft_ms,
                intent=row.intent,
            )
            self.pressure.add_turn(row.llm_calls, row.llm_throttles)
        elif isinstance(row, SessionRecord):
            self._session(row.t_end, row.verdict)
        elif isinstance(row, RequestSample):
            self._request(row.t_start + row.latency_ms / 1000.0, row.instance_id, row.cold_start)
        elif isinstance(row, PressureSample):
            self.pressure.observe(row)

    def observe_dicts(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Take rows forwarded by a worker as dicts."""
        for r in rows:
            try:
                if table == "turns":
                    t_end = float(r["t_end"])
                    latency = (t_end - float(r["t_start"])) * 1000.0
                    ttft = r.get("ttft_ms")
                    self._turn(
                        t_end,
                        latency,
                        bool(r["ok"]),
                        r.get("error_kind"),
                        ttft_ms=None if ttft is None else float(ttft),
                        intent=str(r.get("intent", "")),
                    )
                    self.pressure.add_turn(
                        int(r.get("llm_calls") or 0), int(r.get("llm_throttles") or 0)
                    )
                elif table == "sessions":
                    self._session(float(r["t_end"]), str(r["verdict"]))
                elif table == "requests":
                    instance = r.get("instance_id")
                    self._request(
                        float(r["t_start"]) + float(r["latency_ms"]) / 1000.0,
                        None if instance is None else str(instance),
                        r.get("cold_start") is True,
                    )
            except (KeyError, TypeError, ValueError):
                continue

    def _request(self, t_end: float, instance_id: str | None, cold_start: bool | None) -> None:
        with self._lock:
            if instance_id:
                if len(self._instances) == self._instances.maxlen:
                    self._forget_instance(self._instances[0][1])  # append drops it
                self._instances.append((t_end, instance_id))
                self._alive[instance_id] += 1
            if cold_start:
                self.cold_starts += 1

    def _turn(
        self,
        t_end: float,
        latency_ms: float,
        ok: bool,
        error_kind: Any = None,
        *,
        ttft_ms: float | None = None,
        intent: str = "",
    ) -> None:
        with self._lock:
            if len(self._turns) == self._turns.max_turns:
                self._window_failures -= not self._turns.drop_oldest()
            self._turns.append(t_end, ok, latency_ms, math.nan if ttft_ms is None else ttft_ms)
            self._window_failures += not ok
            self._history.append((t_end, latency_ms, ok, ttft_ms, intent))
            self.turns_done += 1
            self.turns_failed += 0 if ok else 1
            self.turns_refused += 1 if not ok and error_kind == "auth" else 0

    def _session(self, t_end: float, verdict: str) -> None:
        with self._lock:
            self._verdicts[verdict] += 1
            self._session_ends.append((t_end, verdict))

    def figure(
        self,
        key: str,
        *,
        window_s: float | None = None,
        intent: str | None = None,
        now: float | None = None,
        min_turns: int = 20,
    ) -> float | None:
        """A live gate's figure over the last ``window_s`` seconds (None: the run so far).

        Turn latency and TTFT percentiles of successful turns (``p50_ms`` ...
        ``ttft_p99_ms``) and the failed-turn rate (``error_rate``) need at least
        ``min_turns`` turns in the
        window (fewer say nothing yet: None); session counts (``max_restarted``,
        ``max_duplicated``, ``max_failed_sessions``) count the sessions that ended
        in the window. Unknown keys give None.
        """
        now = time.time() if now is None else now
        since = -math.inf if window_s is None else now - window_s
        verdict = _COUNTED.get(key)
        with self._lock:
            if verdict is not None:
                return float(sum(1 for t, v in self._session_ends if t >= since and v == verdict))
            turns = [
                row
                for row in self._history
                if row[0] >= since and (intent is None or row[4] == intent)
            ]
        if len(turns) < min_turns:
            return None
        if key == "error_rate":
            return sum(1 for row in turns if not row[2]) / len(turns)
        quantile = _QUANTILES.get(key)
        if quantile is None:
            return None
        # latency gates judge successful turns, as the report does
        column = 3 if key.startswith("ttft_") else 1
        values = [row[column] for row in turns if row[2] and row[column] is not None]
        if not values:
            return None
        data = np.asarray(values, dtype="float64")
        return float(np.percentile(data, quantile, method="inverted_cdf"))

    def refused_from_the_start(self, *, min_turns: int = 20) -> bool:
        """True when at least ``min_turns`` turns ended and every one was refused (401/403).

        That is a configuration error (wrong or missing JWT secret), not a load result:
        going on would only hammer the agent with requests it refuses.
        """
        with self._lock:
            return self.turns_done >= min_turns and self.turns_refused == self.turns_done

    def snapshot(self, *, now: float | None = None) -> dict[str, Any]:
        """Verdict counts and the window's turns, P99 and error rate."""
        now = time.time() if now is None else now
        with self._lock:
            self._prune(now)
            latencies = self._turns.column("latencies")
            failures = self._window_failures
            verdicts = dict(self._verdicts)
            done, failed = self.turns_done, self.turns_failed
        recent = latencies.size
        return {
            "turns_done": done,
            "turns_failed": failed,
            "sessions": verdicts,
            "window_s": self.window_s,
            "window": {
                "turns": recent,
                "p99_ms": (
                    round(float(np.percentile(latencies, 99, method="inverted_cdf")), 3)
                    if recent
                    else None
                ),
                "error_rate": failures / recent if recent else 0.0,
            },
        }

    def window_percentiles(self, *, now: float | None = None) -> dict[str, float | None]:
        """``p50_ms``, ``p99_ms`` and ``ttft_p99_ms`` of the successful turns of the window.

        The same numbers as :meth:`figure` over ``window_s`` (None without a turn), from
        the window's turns as arrays (a turn a worker forwarded late counts by its end).
        """
        now = time.time() if now is None else now
        since = now - self.window_s
        with self._lock:
            self._prune(now)
            ends = self._turns.column("ends")
            oks = self._turns.column("oks").astype(bool)
            latencies = self._turns.column("latencies")
            ttfts = self._turns.column("ttfts")
        counted = oks & (ends >= since)
        ttft = ttfts[counted]
        return {
            "p50_ms": _percentile(latencies[counted], 50.0),
            "p99_ms": _percentile(latencies[counted], 99.0),
            "ttft_p99_ms": _percentile(ttft[~np.isnan(ttft)], 99.0),
        }

    def environments_alive(self, *, now: float | None = None) -> int:
        """How many distinct environments (pods, Lambda environments) answered in the window."""
        now = time.time() if now is None else now
        since = now - self.window_s
        with self._lock:
            while self._instances and self._instances[0][0] < since:
                self._forget_instance(self._instances.popleft()[1])
            return len(self._alive)

    def _forget_instance(self, instance_id: str) -> None:
        left = self._alive[instance_id] - 1
        if left > 0:
            self._alive[instance_id] = left
        else:
            del self._alive[instance_id]

    def _prune(self, now: float) -> None:
        """Drop the turns that ended before the window (the lock held)."""
        self._window_failures -= self._turns.drop_ended_before(now - self.window_s)

    def verdicts(self) -> dict[str, int]:
        """Sessions ended so far, by verdict."""
        with self._lock:
            return dict(self._verdicts)


class _TurnColumns:
    """The window's turns, oldest first, as columns of machine numbers (``array.array``).

    The window's floats are read back once a second or more (live.json, the web
    UI's tab); from a deque of Python floats that meant a pointer to follow per
    value, scattered over a large heap. Here a column is one block of memory:
    reading it is a copy. Turns leave from the front by moving ``_start``; the
    columns are cut to what is left when that front passes half their length.
    """

    __slots__ = ("_start", "ends", "latencies", "max_turns", "oks", "ttfts")

    def __init__(self, max_turns: int) -> None:
        self.max_turns = max_turns
        self.ends = array("d")
        self.oks = array("b")
        self.latencies = array("d")
        self.ttfts = array("d")  # NaN: no first token
        self._start = 0

    def __len__(self) -> int:
        return len(self.ends) - self._start

    def append(self, end: float, ok: bool, latency_ms: float, ttft_ms: float) -> None:
        self.ends.append(end)
        self.oks.append(ok)
        self.latencies.append(latency_ms)
        self.ttfts.append(ttft_ms)

    def drop_oldest(self) -> bool:
        """Drop the oldest turn (there must be one); whether it was ok."""
        ok = bool(self.oks[self._start])
        self._start += 1
        self._compact()
        return ok

    def drop_ended_before(self, cutoff: float) -> int:
        """Drop the oldest turns up to the first that ended at or after ``cutoff``; how many
        of them failed. One pass in numpy: the window loses ~1,000 turns a second at a
        flash sale's peak, and the snapshot that drops them runs twice a second on the loop."""
        start = self._start
        # a new array, no view of the column left behind (a viewed array cannot be resized)
        inside = np.frombuffer(self.ends, dtype="float64")[start:] >= cutoff
        # up to the first turn still inside (argmax: the first True); all when none is
        dropped = int(inside.argmax()) if inside.any() else inside.size
        if not dropped:
            return 0
        kept = int(np.frombuffer(self.oks, dtype="int8")[start : start + dropped].sum())
        self._start = start + dropped
        self._compact()
        return dropped - kept

    def _compact(self) -> None:
        if self._start * 2 >= len(self.ends) and self._start >= 1024:
            for column in (self.ends, self.oks, self.latencies, self.ttfts):
                del column[: self._start]
            self._start = 0

    def column(self, name: str) -> npt.NDArray[Any]:
        """A copy of one column's turns in the window, oldest first."""
        values: array[Any] = getattr(self, name)
        dtype = "int8" if values.typecode == "b" else "float64"
        return np.frombuffer(values, dtype=dtype)[self._start :].copy()


def _percentile(values: npt.NDArray[np.float64], q: float) -> float | None:
    if not values.size:
        return None
    return float(np.percentile(values, q, method="inverted_cdf"))


# Prometheus counters and CloudWatch statistics that are totals over their period
_PROMETHEUS_COUNTER = "_total"
_CLOUDWATCH_SUMS = frozenset({"Sum", "SampleCount"})


class PressureTotals:
    """Downstream totals since the run started, by series key, as the report names them.

    Keys are those of :class:`loadlab.analysis.resample.SeriesInfo`:
    ``prometheus:<counter>`` (the increase of a counter summed over its label
    sets; a drop is a restart from zero, and a label set first seen after its
    target's first scrape counts from zero), ``cloudwatch:<Namespace/Metric>:<stat>``
    for ``Sum``/``SampleCount`` (datapoints summed, a revised one counted once) and
    ``turns:llm_calls`` / ``turns:llm_throttles`` (what the agent reported per turn).
    """

    def __init__(self) -> None:
        self._lock = loop_lock()
        # (key, labels) -> (last value, increase so far)
        self._counters: dict[tuple[str, str], tuple[float, float]] = {}
        # Prometheus target (its instance label) -> time of its first scrape
        self._first_scrape: dict[str, float] = {}
        # (key, dimensions, period start) -> value
        self._periods: dict[tuple[str, str, float], float] = {}
        self._llm_calls = 0
        self._llm_throttles = 0

    def add_turn(self, llm_calls: int, llm_throttles: int) -> None:
        """Count the LLM calls and 429s one turn reported."""
        with self._lock:
            self._llm_calls += llm_calls
            self._llm_throttles += llm_throttles

    def observe(self, row: PressureSample) -> None:
        """Take one downstream sample (gauges and histogram buckets only date a scrape)."""
        if row.source == "prometheus":
            labels = _dimensions(row.dimensions_json)
            instance = str(labels.get("instance", ""))
            with self._lock:
                first = self._first_scrape.setdefault(instance, row.t)
            if not row.metric.endswith(_PROMETHEUS_COUNTER):
                return
            series = (f"prometheus:{row.metric}", repr(sorted(labels.items())))
            with self._lock:
                seen = self._counters.get(series)
                if seen is None:
                    # A label set that appears after its target's first scrape (the first
                    # 429 of the run, a new status) was 0 before: all of it is this run's.
                    self._counters[series] = (row.value, row.value if row.t > first else 0.0)
                else:
                    last, increase = seen
                    step = row.value - last if row.value >= last else row.value
                    self._counters[series] = (row.value, increase + step)
        elif row.source == "cloudwatch":
            dims = _dimensions(row.dimensions_json)
            stat = str(dims.pop("stat", "") or "Value")
            if stat in _CLOUDWATCH_SUMS:
                dims.pop("period_s", None)
                key = (f"cloudwatch:{row.metric}:{stat}", repr(sorted(dims.items())), row.t)
                with self._lock:
                    self._periods[key] = row.value

    def totals(self) -> dict[str, float]:
        """Every total so far, by series key (a series absent until its first sample)."""
        out: dict[str, float] = {}
        with self._lock:
            for (key, _), (_, increase) in self._counters.items():
                out[key] = out.get(key, 0.0) + increase
            for (key, _, _), value in self._periods.items():
                out[key] = out.get(key, 0.0) + value
            out["turns:llm_calls"] = float(self._llm_calls)
            out["turns:llm_throttles"] = float(self._llm_throttles)
        return out


def _dimensions(dimensions_json: str) -> dict[str, Any]:
    try:
        value = json.loads(dimensions_json)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class ObservedSink:
    """A sink that hands every row to the recorder and to the live window."""

    def __init__(self, recorder: Any, window: LiveWindow) -> None:
        self._recorder = recorder
        self._window = window

    def emit(self, row: Any) -> None:
        """Record the row and update the live window."""
        self._recorder.emit(row)
        self._window.observe(row)
