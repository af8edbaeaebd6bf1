"""Provisioned capacity settings of the gate, and the lease that overrides them.

Capacities are capacity units per *simulated* second: at ``time_scale`` 0.05
(everything 20x faster) a table provisioned with 5 WCU refills at 100 WCU per
real second, so an experiment means the same at every time scale. ``burst_s``
is how many (simulated) seconds of unused capacity a table may save up, like
DynamoDB's 300 s burst; it is never less than one second of capacity.
A lease's ``expires_at`` is wall-clock epoch seconds, like every fault lease.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CAPACITY_FIELDS",
    "DEFAULT_BURST_S",
    "CapacitySettings",
    "CapacityValueError",
    "bucket_shape",
    "updated_settings",
]

CAPACITY_FIELDS = ("rcu", "wcu", "burst_s", "expires_at")
DEFAULT_BURST_S = 300.0
_MIN_BURST_S = 1.0


class CapacityValueError(ValueError):
    """An admin request carried a capacity value out of range (answered with 400)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CapacitySettings:
    """Read and write capacity of every table behind the gate; ``None`` is unlimited."""

    rcu: float | None = None
    wcu: float | None = None
    burst_s: float = DEFAULT_BURST_S
    expires_at: float | None = None

    def __post_init__(self) -> None:
        for name in ("rcu", "wcu"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise CapacityValueError(
                    f"{name} must be a number of capacity units >= 0 or null, got {value!r}"
                )
        if not (math.isfinite(self.burst_s) and self.burst_s >= 0):
            raise CapacityValueError(
                f"burst_s must be a number of seconds >= 0, got {self.burst_s}"
            )
        if self.expires_at is not None and not math.isfinite(self.expires_at):
            raise CapacityValueError(f"expires_at must be epoch seconds, got {self.expires_at}")

    def active(self, now_epoch: float) -> bool:
        """Whether these settings (as a lease) still apply at ``now_epoch``."""
        return self.expires_at is None or now_epoch < self.expires_at

    def to_json(self) -> dict[str, Any]:
        """The settings as the admin API shows them."""
        return dataclasses.asdict(self)


def bucket_shape(
    units_per_s: float | None, *, burst_s: float, time_scale: float
) -> tuple[float | None, float]:
    """``(rate per real second, capacity in units)`` of a bucket for a provisioned capacity."""
    if units_per_s is None:
        return None, 0.0
    return units_per_s / time_scale, units_per_s * max(burst_s, _MIN_BURST_S)


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CapacityValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def updated_settings(base: CapacitySettings, update: object) -> CapacitySettings:
    """Apply a partial admin update (a JSON object) to ``base``.

    ``rcu``/``wcu`` ``null`` means unlimited; a missing key keeps ``base``'s value.
    Raises :class:`CapacityValueError` for unknown keys or out-of-range values.
    """
    if not isinstance(update, dict):
        raise CapacityValueError("the body must be a JSON object")
    unknown = sorted(set(update) - set(CAPACITY_FIELDS))
    if unknown:
        raise CapacityValueError(
            f"unknown capacity field(s) {unknown}; known: {list(CAPACITY_FIELDS)}"
        )
    changes: dict[str, Any] = {}
    for name in ("rcu", "wcu", "expires_at"):
        if name in update:
            raw = update[name]
            changes[name] = None if raw is None else _number(name, raw)
    if "burst_s" in update:
        changes["burst_s"] = _number("burst_s", update["burst_s"])
    return dataclasses.replace(base, **changes)
