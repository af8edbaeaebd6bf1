"""Runtime faults of the LLM simulator, set through its admin API.

A fault is a lease: with ``expires_at`` (epoch seconds) set, it stops applying at
that time on its own, so a crashed harness cannot leave the LLM broken.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

FAULT_FIELDS = (
    "reject_fraction",
    "extra_latency_ms",
    "token_interval_factor",
    "rpm",
    "tpm",
    "expires_at",
)


class FaultValueError(ValueError):
    """An admin request carried a fault value out of range (answered with 400)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """What is currently injected; the defaults inject nothing.

    ``rpm``/``tpm`` replace the configured quotas while set (0 = unlimited).
    """

    reject_fraction: float = 0.0
    extra_latency_ms: float = 0.0
    token_interval_factor: float = 1.0
    rpm: int | None = None
    tpm: int | None = None
    expires_at: float | None = None

    def active(self, now_epoch: float) -> bool:
        """Whether the fault still applies at ``now_epoch``."""
        return self.expires_at is None or now_epoch < self.expires_at

    def to_json(self) -> dict[str, Any]:
        """The fault as the admin API shows it."""
        return dataclasses.asdict(self)


NO_FAULT = Fault()


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FaultValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _limit(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FaultValueError(f"{name} must be an integer >= 0 or null, got {value!r}")
    return value


def updated_fault(base: Fault, update: object) -> Fault:
    """Apply a partial admin update (a JSON object) to ``base``.

    Raises :class:`FaultValueError` for unknown keys or out-of-range values.
    """
    if not isinstance(update, dict):
        raise FaultValueError("the body must be a JSON object")
    unknown = sorted(set(update) - set(FAULT_FIELDS))
    if unknown:
        raise FaultValueError(f"unknown fault field(s) {unknown}; known: {list(FAULT_FIELDS)}")
    changes: dict[str, Any] = {}
    if "reject_fraction" in update:
        fraction = _number("reject_fraction", update["reject_fraction"])
        if not 0 <= fraction <= 1:
            raise FaultValueError(f"reject_fraction must be in [0, 1], got {fraction}")
        changes["reject_fraction"] = fraction
    if "extra_latency_ms" in update:
        extra = _number("extra_latency_ms", update["extra_latency_ms"])
        if extra < 0:
            raise FaultValueError(f"extra_latency_ms must be >= 0, got {extra}")
        changes["extra_latency_ms"] = extra
    if "token_interval_factor" in update:
        factor = _number("token_interval_factor", update["token_interval_factor"])
        if factor <= 0:
            raise FaultValueError(f"token_interval_factor must be > 0, got {factor}")
        changes["token_interval_factor"] = factor
    for name in ("rpm", "tpm"):
        if name in update:
            changes[name] = _limit(name, update[name])
    if "expires_at" in update:
        raw = update["expires_at"]
        changes["expires_at"] = None if raw is None else _number("expires_at", raw)
    return dataclasses.replace(base, **changes)
