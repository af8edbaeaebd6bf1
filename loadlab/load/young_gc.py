"""Keep Python's cyclic garbage collector on young objects while the load runs.

A Locust process holding 5,000 sessions keeps hundreds of thousands of live
objects (users, session plans, ledgers, connections, rows waiting for the
recorder's next flush). Every object that survives two young collections lands
in the oldest generation, and a full collection walks all of them: 100-300 ms
in which no user runs, several times a minute (bench/concurrency.py --profile,
bench/RESULTS.md). Those collections find almost nothing: the harness makes
next to no cyclic garbage (in the profiled run, 40 objects in 13 full
collections); what it frees, reference counting frees.

:class:`YoungGarbageCollection` calls :func:`gc.freeze` once a second while the
load runs: the objects alive then go to the permanent generation, which no
collection walks, so every collection looks only at what the last second made.
It also turns collections of the oldest generation off meanwhile (its threshold
raised out of reach, restored at :meth:`~YoungGarbageCollection.stop`): between
two freezes they still came every ~0.6 s at 5,000 sessions and walked everything
that had survived since the last freeze, 10-24 ms with no user running
(bench/RESULTS.md); what survives two young collections now just waits for the
next freeze.
Frozen objects are still freed by reference counting when they die; only a
reference cycle that was alive at a freeze and dies later waits, until
:meth:`stop` unfreezes everything at the end of the load and a normal
collection frees it.
"""

from __future__ import annotations

import gc
from typing import Any

__all__ = ["OLDEST_OFF", "YoungGarbageCollection"]

OLDEST_OFF = 1_000_000_000
"""The oldest generation's threshold while the load runs: young collections to come first."""


class YoungGarbageCollection:
    """Freezes the objects alive every ``interval_s`` seconds, from :meth:`start` to :meth:`stop`.

    Runs as a greenlet on the load's gevent loop (import gevent only when started).
    """

    def __init__(self, *, interval_s: float = 1.0) -> None:
        if not interval_s > 0:
            raise ValueError(f"YoungGarbageCollection: interval_s must be > 0, got {interval_s!r}")
        self.interval_s = interval_s
        self.freezes = 0
        self._greenlet: Any = None
        self._thresholds: tuple[int, int, int] | None = None

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._greenlet is not None

    def tick(self) -> None:
        """Move every object alive now out of the collector's sight (see the module docstring)."""
        gc.freeze()
        self.freezes += 1

    def start(self) -> YoungGarbageCollection:
        """Freeze now and every ``interval_s`` seconds (once: a second start does nothing)."""
        if self._greenlet is None:
            import gevent

            self._thresholds = gc.get_threshold()
            young, middle, _ = self._thresholds
            gc.set_threshold(young, middle, OLDEST_OFF)
            self.tick()
            self._greenlet = gevent.spawn(self._run)
        return self

    def stop(self) -> None:
        """Stop freezing and give every frozen object back to the collector."""
        greenlet, self._greenlet = self._greenlet, None
        if greenlet is not None:
            greenlet.kill(block=False)
            if self._thresholds is not None:
                gc.set_threshold(*self._thresholds)
            gc.unfreeze()

    def _run(self) -> None:
        import gevent

        me = gevent.getcurrent()
        while True:
            gevent.sleep(self.interval_s)
            if self._greenlet is not me:
                return  # stopped while asleep: a freeze now would outlive the stop
            self.tick()
