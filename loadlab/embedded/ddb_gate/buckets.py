"""Token buckets for provisioned read and write capacity.

A bucket refills at ``rate`` capacity units per (real) second up to
``capacity`` units. A request is admitted while the bucket holds more than
nothing, and is then charged what it actually consumed, which may take the
bucket below zero: DynamoDB only learns a request's cost (item sizes) after it
ran, and the debt keeps the long-run rate at the provisioned one. Time is
passed in by the caller (``now``, seconds on any monotonic clock), so the
arithmetic is tested without waiting.
"""

from __future__ import annotations

import math

__all__ = ["TokenBucket"]


class TokenBucket:
    """One table's read or write capacity; ``rate=None`` is unlimited (on-demand)."""

    def __init__(self, *, rate: float | None, capacity: float, now: float) -> None:
        _check(rate, capacity)
        self._rate = rate
        self._capacity = capacity
        self._level = capacity
        self._updated = now

    @property
    def rate(self) -> float | None:
        """Units added per second, or ``None`` for unlimited."""
        return self._rate

    @property
    def capacity(self) -> float:
        """The most units the bucket holds (the burst)."""
        return self._capacity

    def level(self, now: float) -> float | None:
        """Units available at ``now`` (negative while in debt); ``None`` when unlimited."""
        if self._rate is None:
            return None
        self._refill(now)
        return self._level

    def admits(self, now: float) -> bool:
        """Whether a request arriving at ``now`` may run."""
        level = self.level(now)
        return level is None or level > 0

    def charge(self, units: float, now: float) -> None:
        """Take ``units`` consumed by a request that finished at ``now``."""
        if units < 0 or not math.isfinite(units):
            raise ValueError(f"cannot charge {units!r} capacity units")
        if self._rate is None:
            return
        self._refill(now)
        self._level -= units

    def reconfigure(
        self, *, rate: float | None, capacity: float, now: float, grant: float = 0.0
    ) -> None:
        """Change the rate and burst at ``now``.

        Units saved up at the old rate are kept up to the new capacity (a cut
        bites once they are spent); a bucket that was unlimited starts full.
        When the rate is raised (a cut ends), at least ``grant`` units (up to
        the capacity) are available at once, debt forgiven: raised capacity
        serves right away, as DynamoDB's does after UpdateTable.
        """
        _check(rate, capacity)
        if self._rate is None:
            self._level = capacity
        else:
            self._refill(now)
            self._level = min(self._level, capacity)
            if rate is not None and rate > self._rate:
                self._level = max(self._level, min(grant, capacity))
        self._rate, self._capacity, self._updated = rate, capacity, now

    def _refill(self, now: float) -> None:
        assert self._rate is not None
        elapsed = now - self._updated
        if elapsed > 0:
            self._level = min(self._capacity, self._level + elapsed * self._rate)
            self._updated = now


def _check(rate: float | None, capacity: float) -> None:
    if rate is not None and (rate < 0 or not math.isfinite(rate)):
        raise ValueError(f"a token bucket's rate must be a finite number >= 0, not {rate!r}")
    if capacity < 0 or not math.isfinite(capacity):
        raise ValueError(
            f"a token bucket's capacity must be a finite number >= 0, not {capacity!r}"
        )
