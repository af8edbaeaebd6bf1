"""Shorter GIL slices while the load runs, so a busy helper thread cannot hold the users up.

The load runs on one gevent loop in the main thread, and a few threads work beside
it: the recorder's parquet writes and live.json on gevent's thread pool
(:mod:`loadlab.measure.offload`), the metrics endpoint. While one of them runs
Python code (turning a second of rows into Arrow columns, redacting them), the
main thread waits for the GIL until that thread's slice ends: CPython's switch
interval, 5 ms by default (:func:`sys.getswitchinterval`). A user whose answer
arrived meanwhile is timed late by up to that much, slice after slice while the
flush lasts.

:class:`ShortGilSlices` sets the interval to :data:`SLICE_S` from :meth:`start`
to :meth:`stop` (the load's start and stop), and restores the one it found.
"""

from __future__ import annotations

import sys

__all__ = ["SLICE_S", "ShortGilSlices"]

SLICE_S = 0.001
"""The switch interval while the load runs (CPython's default is 0.005 s)."""


class ShortGilSlices:
    """:func:`sys.setswitchinterval` to ``slice_s`` between :meth:`start` and :meth:`stop`."""

    def __init__(self, *, slice_s: float = SLICE_S) -> None:
        if not slice_s > 0:
            raise ValueError(f"ShortGilSlices: slice_s must be > 0, got {slice_s!r}")
        self.slice_s = slice_s
        self._found: float | None = None

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._found is not None

    def start(self) -> ShortGilSlices:
        """Shorten the slices (once: a second start keeps the interval first found)."""
        if self._found is None:
            self._found = sys.getswitchinterval()
            sys.setswitchinterval(self.slice_s)
        return self

    def stop(self) -> None:
        """Give back the interval found at :meth:`start`."""
        found, self._found = self._found, None
        if found is not None:
            sys.setswitchinterval(found)
