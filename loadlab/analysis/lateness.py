"""Harness lateness: how late the load generator sent the turns it owed.

A shopper's next turn is due when its think time is over. When the load
generator stalls (a blocked event loop, a long garbage collection, a busy CPU)
the turns due during the stall go out late, and their measured latency starts
only then: the stall is missing from the latencies (coordinated omission, in
HdrHistogram's sense). Each turn's ``lateness_ms`` records that delay, and
:func:`harness_lateness` weighs it against the P99 the run measured: when the
harness's own P99 lateness is more than :data:`LATENESS_SHARE_LIMIT` of the turn
P99, the run's percentiles say as much about the harness as about the agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from loadlab.analysis.stats import percentile

__all__ = ["LATENESS_SHARE_LIMIT", "HarnessLateness", "harness_lateness"]

LATENESS_SHARE_LIMIT = 0.01
"""Harness lateness P99 above this share of the turn P99 distorts the run's percentiles."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HarnessLateness:
    """How late the harness sent turns (ms), and whether it matters for the turn P99.

    ``count`` is the number of turns with a recorded lateness (0 for runs
    recorded before loadlab measured it: every figure is then None and
    ``distorted`` False). ``share_of_turn_p99`` is ``p99 / turn_p99_ms``;
    ``distorted`` is True when it exceeds :data:`LATENESS_SHARE_LIMIT`.
    """

    count: int
    p50: float | None
    p99: float | None
    max: float | None
    turn_p99_ms: float | None
    share_of_turn_p99: float | None
    distorted: bool

    @property
    def warning(self) -> str | None:
        """What the report says when the lateness distorts the measured P99, else None."""
        if not self.distorted or self.p99 is None or self.turn_p99_ms is None:
            return None
        return (
            f"harness lateness P99 = {self.p99:.1f} ms is "
            f"{(self.share_of_turn_p99 or 0.0) * 100:.1f}% of the turn P99 "
            f"({self.turn_p99_ms:.1f} ms), over the {LATENESS_SHARE_LIMIT:.0%} the "
            "percentiles can bear: the load generator sent turns late (stalls, CPU), "
            "so its own delay is missing from the latencies (coordinated omission). "
            "Give it more CPU or spread the users over Locust workers (--workers)."
        )

    def to_json(self) -> dict[str, Any]:
        """summary.json's ``harness_lateness_ms`` section."""
        return {
            "count": self.count,
            "p50": self.p50,
            "p99": self.p99,
            "max": self.max,
            "turn_p99_ms": self.turn_p99_ms,
            "share_of_turn_p99": self.share_of_turn_p99,
            "limit_share": LATENESS_SHARE_LIMIT,
            "distorted": self.distorted,
        }


def harness_lateness(turns: pd.DataFrame, turn_p99_ms: float | None) -> HarnessLateness:
    """The lateness of ``turns`` (turns.parquet) against the run's turn P99 (ms)."""
    values = (
        pd.Series(turns["lateness_ms"], dtype="float64").dropna()
        if "lateness_ms" in turns and len(turns)
        else pd.Series(dtype="float64")
    )
    if not len(values):
        return HarnessLateness(
            count=0,
            p50=None,
            p99=None,
            max=None,
            turn_p99_ms=turn_p99_ms,
            share_of_turn_p99=None,
            distorted=False,
        )
    p99 = _round(percentile(values, 99))
    share = None
    if p99 is not None and turn_p99_ms is not None and turn_p99_ms > 0:
        share = round(p99 / turn_p99_ms, 6)
    return HarnessLateness(
        count=len(values),
        p50=_round(percentile(values, 50)),
        p99=p99,
        max=round(float(values.max()), 3),
        turn_p99_ms=turn_p99_ms,
        share_of_turn_p99=share,
        distorted=share is not None and share > LATENESS_SHARE_LIMIT,
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
