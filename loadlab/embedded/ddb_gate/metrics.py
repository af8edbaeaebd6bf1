"""Prometheus metrics and JSON counters of one DynamoDB capacity gate.

The metric names follow CloudWatch's DynamoDB metrics (ConsumedReadCapacityUnits,
ReadThrottleEvents, ThrottledRequests ...), labelled by table and operation. A
per-gate registry (not prometheus_client's global one) lets several gates live
in one process, as they do in tests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

__all__ = ["GateMetrics", "UsageCounters"]


@dataclass(slots=True)
class UsageCounters:
    """What one table saw for one operation since the gate started."""

    requests: int = 0
    consumed_rcu: float = 0.0
    consumed_wcu: float = 0.0
    read_throttle_events: int = 0
    write_throttle_events: int = 0
    throttled_requests: int = 0

    def add(self, other: UsageCounters) -> None:
        """Add ``other``'s counts to these."""
        self.requests += other.requests
        self.consumed_rcu += other.consumed_rcu
        self.consumed_wcu += other.consumed_wcu
        self.read_throttle_events += other.read_throttle_events
        self.write_throttle_events += other.write_throttle_events
        self.throttled_requests += other.throttled_requests

    def to_json(self) -> dict[str, Any]:
        """The counters as a JSON object."""
        return asdict(self)


class GateMetrics:
    """Counters per (table, operation), mirrored in Prometheus and in JSON."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r, labels = self.registry, ["table", "operation"]
        self.requests = Counter(
            "loadlab_ddb_requests",
            "Data-plane requests by table, operation and the HTTP status answered.",
            [*labels, "status"],
            registry=r,
        )
        self.consumed_rcu = Counter(
            "loadlab_ddb_consumed_read_capacity_units",
            "Read capacity units consumed (ConsumedReadCapacityUnits).",
            labels,
            registry=r,
        )
        self.consumed_wcu = Counter(
            "loadlab_ddb_consumed_write_capacity_units",
            "Write capacity units consumed (ConsumedWriteCapacityUnits).",
            labels,
            registry=r,
        )
        self.read_throttles = Counter(
            "loadlab_ddb_read_throttle_events",
            "Reads refused for lack of read capacity (ReadThrottleEvents).",
            labels,
            registry=r,
        )
        self.write_throttles = Counter(
            "loadlab_ddb_write_throttle_events",
            "Writes refused for lack of write capacity (WriteThrottleEvents).",
            labels,
            registry=r,
        )
        self.throttled = Counter(
            "loadlab_ddb_throttled_requests",
            "Requests answered ProvisionedThroughputExceededException (ThrottledRequests).",
            labels,
            registry=r,
        )
        self.provisioned = Gauge(
            "loadlab_ddb_provisioned_capacity_units",
            "Capacity units per simulated second of every table (+Inf: unlimited).",
            ["kind"],
            registry=r,
        )
        self.available = Gauge(
            "loadlab_ddb_available_capacity_units",
            "Units left in a table's bucket (negative while in debt; +Inf: unlimited).",
            ["table", "kind"],
            registry=r,
        )
        self.usage: dict[tuple[str, str], UsageCounters] = {}

    def _usage(self, table: str, operation: str) -> UsageCounters:
        return self.usage.setdefault((table, operation), UsageCounters())

    def answered(self, table: str, operation: str, status: int) -> None:
        """Count one request to ``table`` answered with ``status``."""
        self._usage(table, operation).requests += 1
        self.requests.labels(table, operation, str(status)).inc()

    def charged(self, table: str, operation: str, *, rcu: float, wcu: float) -> None:
        """Count the capacity one request consumed on ``table``."""
        usage = self._usage(table, operation)
        usage.consumed_rcu += rcu
        usage.consumed_wcu += wcu
        if rcu:
            self.consumed_rcu.labels(table, operation).inc(rcu)
        if wcu:
            self.consumed_wcu.labels(table, operation).inc(wcu)

    def throttled_on(self, table: str, operation: str, *, kind: str) -> None:
        """Count one throttle event (and throttled request) on ``table``."""
        usage = self._usage(table, operation)
        usage.throttled_requests += 1
        self.throttled.labels(table, operation).inc()
        if kind == "read":
            usage.read_throttle_events += 1
            self.read_throttles.labels(table, operation).inc()
        else:
            usage.write_throttle_events += 1
            self.write_throttles.labels(table, operation).inc()

    def tables_json(self) -> dict[str, dict[str, Any]]:
        """``{table: {totals..., "operations": {operation: counters}}}``."""
        out: dict[str, dict[str, Any]] = {}
        totals: dict[str, UsageCounters] = {}
        for (table, operation), usage in sorted(self.usage.items()):
            totals.setdefault(table, UsageCounters()).add(usage)
            entry = out.setdefault(table, {"operations": {}})
            entry["operations"][operation] = usage.to_json()
        for table, total in totals.items():
            out[table].update(total.to_json())
        return out

    def render(self) -> bytes:
        """The registry in Prometheus text format."""
        return bytes(generate_latest(self.registry))
