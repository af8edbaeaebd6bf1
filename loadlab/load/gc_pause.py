"""No cyclic garbage collection while the load runs; what it made is collected after.

Python's cyclic collector runs a young collection every few hundred net
allocations. In a Locust process holding 5,000 sessions each one took 4 ms on
average and up to 16 ms with every user stopped (``bench/concurrency.py
--profile``), several times a second: a large share of the load's CPU and most
of what the harness added to P99 (bench/RESULTS.md, "2. Concurrency"). They found next to
nothing: the harness frees what it makes by reference counting, a turn's
objects and a failed turn's exception alike (tests/load/test_gc_pause.py plays
failed turns with the collector off and finds no cyclic garbage; the transports
clear each handled failure's traceback, which held cycles:
:func:`loadlab.load.transport.forget_traceback`). The cycles a run leaves are
its users, once they stop.

:class:`CollectorPause` turns the collector off from :meth:`~CollectorPause.start`
to :meth:`~CollectorPause.stop` (the start and stop of the load) and calls
:func:`gc.freeze` once a second meanwhile, so that when the collector comes back
the objects of the run wait in the permanent generation, given back to the
oldest generation at stop: the first collections after the load look at what
is new, and the whole heap is walked only when the oldest generation's own rule
says so. Reference counting frees everything else as usual; a reference cycle
made during the load waits for the collector's return.
"""

from __future__ import annotations

import gc
from typing import Any

__all__ = ["CollectorPause"]


class CollectorPause:
    """Collector off from :meth:`start` to :meth:`stop`; a freeze every ``interval_s`` meanwhile.

    Runs its freezes as a greenlet on the load's gevent loop (imports gevent only when started).
    """

    def __init__(self, *, interval_s: float = 1.0) -> None:
        if not interval_s > 0:
            raise ValueError(f"CollectorPause: interval_s must be > 0, got {interval_s!r}")
        self.interval_s = interval_s
        self.freezes = 0
        self._greenlet: Any = None
        self._was_enabled = False

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._greenlet is not None

    def tick(self) -> None:
        """Move every object alive now to the permanent generation (see the module docstring)."""
        gc.freeze()
        self.freezes += 1

    def start(self) -> CollectorPause:
        """Collector off; freeze now and every ``interval_s`` (a second start does nothing)."""
        if self._greenlet is None:
            import gevent

            self._was_enabled = gc.isenabled()
            gc.disable()
            self.tick()
            self._greenlet = gevent.spawn(self._run)
        return self

    def stop(self) -> None:
        """Give the frozen objects back to the collector and turn it back on (if it was on)."""
        greenlet, self._greenlet = self._greenlet, None
        if greenlet is not None:
            greenlet.kill(block=False)
            gc.unfreeze()
            if self._was_enabled:
                gc.enable()

    def _run(self) -> None:
        import gevent

        me = gevent.getcurrent()
        while True:
            gevent.sleep(self.interval_s)
            if self._greenlet is not me:
                return  # stopped while asleep: a freeze now would outlive the stop
            self.tick()
