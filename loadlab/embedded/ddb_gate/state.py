"""The gate's state: capacity settings and their lease, one bucket per table and kind.

Every table behind the gate is provisioned with the same settings and has its
own read and write bucket. A lease (an override with ``expires_at``) replaces
the configured defaults until it expires or is deleted; the buckets are
reshaped lazily, on the first request (or view) after the effective settings
changed, so an expired lease needs no timer to end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from loadlab.embedded.admin_auth import check_lease
from loadlab.embedded.ddb_gate.buckets import TokenBucket
from loadlab.embedded.ddb_gate.capacity import CapacitySettings, bucket_shape, updated_settings
from loadlab.embedded.ddb_gate.metrics import GateMetrics
from loadlab.embedded.ddb_gate.units import Classified, Kind

__all__ = ["CapacityGate"]


class CapacityGate:
    """Admits or refuses data-plane requests and charges what they consumed.

    ``clock`` (monotonic seconds) drives the buckets, ``wall_clock`` (epoch
    seconds) judges lease expiry; both are injectable so tests need not wait.
    """

    def __init__(
        self,
        *,
        defaults: CapacitySettings,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if not time_scale > 0:
            raise ValueError(f"time_scale must be > 0, not {time_scale!r}")
        self.defaults = CapacitySettings(
            rcu=defaults.rcu, wcu=defaults.wcu, burst_s=defaults.burst_s
        )
        self.override: CapacitySettings | None = None
        self.time_scale = time_scale
        self.metrics = GateMetrics()
        self._clock = clock
        self._wall_clock = wall_clock
        self._buckets: dict[tuple[str, Kind], TokenBucket] = {}
        self._shaped_for = self._shape_key(self.defaults)
        self._publish_provisioned(self.defaults)

    # -- settings ---------------------------------------------------------------------

    def lease_active(self) -> bool:
        """Whether an override applies now (set and not expired)."""
        return self.override is not None and self.override.active(self._wall_clock())

    def effective(self) -> CapacitySettings:
        """The settings that apply now: the override while its lease runs, else the defaults."""
        if self.override is not None and self.lease_active():
            return self.override
        return self.defaults

    def update(self, body: object) -> None:
        """Apply a partial admin update on top of what applies now (an expired lease
        is replaced, not extended). Raises ``CapacityValueError``, or ``LeaseRefused``
        when the override has no ``expires_at`` or one past the maximum lease."""
        override = updated_settings(self.effective(), body)
        check_lease(override.expires_at, now=self._wall_clock())
        self.override = override
        self._sync()

    def restore(self) -> None:
        """Drop the override: the configured defaults apply again."""
        self.override = None
        self._sync()

    # -- requests ---------------------------------------------------------------------

    def refused_tables(self, request: Classified) -> list[str]:
        """The tables whose bucket of the request's kind is empty (none: admit it)."""
        self._sync()
        now = self._clock()
        return [t for t in request.tables if not self._bucket(t, request.kind, now).admits(now)]

    def throttled(self, request: Classified, tables: list[str]) -> None:
        """Count a refused request on each table that refused it."""
        for table in request.tables:
            self.metrics.answered(table, request.operation, 400)
        for table in tables:
            self.metrics.throttled_on(table, request.operation, kind=request.kind)

    def charge(
        self, request: Classified, status: int, used: Mapping[str, tuple[float, float]]
    ) -> None:
        """Count a forwarded request and take what it consumed from the buckets."""
        self._sync()
        now = self._clock()
        for table in request.tables:
            self.metrics.answered(table, request.operation, status)
        for table, (rcu, wcu) in used.items():
            if rcu:
                self._bucket(table, "read", now).charge(rcu, now)
            if wcu:
                self._bucket(table, "write", now).charge(wcu, now)
            self.metrics.charged(table, request.operation, rcu=rcu, wcu=wcu)

    # -- views ------------------------------------------------------------------------

    def view(self) -> dict[str, Any]:
        """What ``GET /admin/capacity`` shows."""
        self._sync()
        now = self._clock()
        tables = self.metrics.tables_json()
        for (table, kind), bucket in sorted(self._buckets.items()):
            tables.setdefault(table, {"operations": {}})[f"{kind}_available"] = bucket.level(now)
        return {
            "settings": self.effective().to_json(),
            "defaults": self.defaults.to_json(),
            "override": None if self.override is None else self.override.to_json(),
            "active": self.lease_active(),
            "time_scale": self.time_scale,
            "tables": tables,
        }

    def render_metrics(self) -> bytes:
        """Prometheus text, with the bucket levels as of now."""
        self._sync()
        now = self._clock()
        for (table, kind), bucket in self._buckets.items():
            level = bucket.level(now)
            self.metrics.available.labels(table, kind).set(float("inf") if level is None else level)
        return self.metrics.render()

    # -- internals --------------------------------------------------------------------

    @staticmethod
    def _shape_key(settings: CapacitySettings) -> tuple[float | None, float | None, float]:
        return settings.rcu, settings.wcu, settings.burst_s

    def _shape(self, kind: Kind, settings: CapacitySettings) -> tuple[float | None, float]:
        units = settings.rcu if kind == "read" else settings.wcu
        return bucket_shape(units, burst_s=settings.burst_s, time_scale=self.time_scale)

    def _bucket(self, table: str, kind: Kind, now: float) -> TokenBucket:
        bucket = self._buckets.get((table, kind))
        if bucket is None:
            rate, capacity = self._shape(kind, self.effective())
            bucket = self._buckets[(table, kind)] = TokenBucket(
                rate=rate, capacity=capacity, now=now
            )
        return bucket

    def _sync(self) -> None:
        """Reshape the buckets if the effective settings changed (a lease began or ended)."""
        settings = self.effective()
        key = self._shape_key(settings)
        if key == self._shaped_for:
            return
        now = self._clock()
        for (_, kind), bucket in self._buckets.items():
            rate, capacity = self._shape(kind, settings)
            one_second = (settings.rcu if kind == "read" else settings.wcu) or 0.0
            bucket.reconfigure(rate=rate, capacity=capacity, now=now, grant=one_second)
        self._shaped_for = key
        self._publish_provisioned(settings)

    def _publish_provisioned(self, settings: CapacitySettings) -> None:
        for kind, units in (("read", settings.rcu), ("write", settings.wcu)):
            self.metrics.provisioned.labels(kind).set(float("inf") if units is None else units)
