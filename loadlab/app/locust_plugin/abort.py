"""Stop conditions: a gate marked ``abort: true`` breaks, the load stops, faults are reverted.

On the master (or a standalone Locust), :class:`AbortWatch` judges every abort
gate of the scenario twice a second against the live window of turns and
session verdicts (:meth:`loadlab.measure.live_status.LiveWindow.figure`). On
the first breach it, in this order:

1. puts a ``stop`` event named ``breach`` on the timeline (gate, value, limit);
2. reverts every active fault lease (:func:`loadlab.chaos.stop.revert_active_faults`),
   one ``stop`` event named ``revert`` each;
3. puts a ``stop_load`` event on the timeline and stops the load (Locust's
   runner quits: users stop, the recorder seals); the manifest's ``end_reason``
   says ``aborted``.

The run's verdict then fails on the same gate, judged over the whole run.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from loadlab.chaos.stop import FaultReverted, revert_active_faults
from loadlab.load.context import RowSink
from loadlab.measure.live_status import LiveWindow
from loadlab.rows import TimelineEvent
from loadlab.scenario.gates import Gate

CHECK_EVERY_S = 0.5


@dataclass(frozen=True, slots=True, kw_only=True)
class Breach:
    """An abort gate that broke: which, with what value, when."""

    gate: Gate
    value: float
    t: float

    @property
    def message(self) -> str:
        """One line: ``turn latency P99 (worst 10 s): 2304 (limit 1500)``."""
        return f"{self.gate.label}: {self.value:g} (limit {self.gate.limit:g})"


def first_breach(window: LiveWindow, gates: tuple[Gate, ...], *, now: float) -> Breach | None:
    """The first abort gate the live window breaks now, if any."""
    for gate in gates:
        value = window.figure(gate.key, window_s=gate.window_s, intent=gate.intent, now=now)
        if value is not None and value > gate.limit:
            return Breach(gate=gate, value=value, t=now)
    return None


class AbortWatch:
    """Judges the abort gates in the background and acts once on the first breach."""

    def __init__(
        self,
        *,
        window: LiveWindow,
        gates: tuple[Gate, ...],
        sink: RowSink,
        stop_load: Callable[[Breach], None],
        revert: Callable[[], list[FaultReverted]] = revert_active_faults,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._window = window
        self._gates = gates
        self._sink = sink
        self._stop_load = stop_load
        self._revert = revert
        self._clock = clock
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self.breach: Breach | None = None

    def start(self) -> AbortWatch:
        """Start judging (a greenlet under Locust: gevent patches threading)."""
        self._thread = threading.Thread(target=self._run, name="loadlab-abort", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop judging (the run ends)."""
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def check(self) -> Breach | None:
        """Judge once; on a breach, act (event, revert, stop) and return it."""
        if self.breach is not None:
            return None
        breach = first_breach(self._window, self._gates, now=self._clock())
        if breach is None:
            return None
        self.breach = breach
        self._event("breach", gate=breach.gate.name, value=breach.value, limit=breach.gate.limit)
        sys.stderr.write(f"loadlab: abort gate broken: {breach.message}; stopping the load\n")
        for result in self._revert():
            self._event(
                "revert", target=result.target, outcome=result.outcome, detail=result.detail
            )
            sys.stderr.write(f"loadlab: {result.target}: {result.outcome}: {result.detail}\n")
        self._event("stop_load", gate=breach.gate.name)
        sys.stderr.flush()
        self._stop_load(breach)
        return breach

    def _event(self, name: str, **attrs: object) -> None:
        self._sink.emit(TimelineEvent(t=self._clock(), kind="stop", name=name, attrs=dict(attrs)))

    def _run(self) -> None:
        while not self._done.wait(CHECK_EVERY_S):
            if self.check() is not None:
                return
