"""Percentiles from exact samples.

loadlab computes every percentile from the raw values it recorded, never from
Locust's rounded response-time buckets. The method is nearest-rank
(``numpy``'s ``inverted_cdf``): the reported P99 is a latency some request
really had, which is what HdrHistogram and Locust (on its rounded values) also
report, so the two agree up to Locust's rounding.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50", 50.0),
    ("p95", 95.0),
    ("p99", 99.0),
    ("p99_9", 99.9),
)


def percentile(values: Iterable[float] | pd.Series, q: float) -> float | None:
    """Nearest-rank percentile ``q`` (0-100) of ``values``, ignoring NaN; None if empty."""
    arr = np.asarray(pd.Series(values, dtype="float64").dropna())
    if arr.size == 0:
        return None
    return float(np.percentile(arr, q, method="inverted_cdf"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Distribution:
    """Count, nearest-rank percentiles, mean and max of some values (None when there are none).

    Figures are rounded to 3 decimals (a microsecond, for milliseconds).
    """

    count: int
    p50: float | None
    p95: float | None
    p99: float | None
    p99_9: float | None
    mean: float | None
    max: float | None

    @classmethod
    def of(cls, values: Iterable[float] | pd.Series) -> Distribution:
        """The distribution of ``values``, ignoring NaN."""
        arr = pd.Series(values, dtype="float64").dropna().to_numpy()
        if arr.size == 0:
            return cls(count=0, p50=None, p95=None, p99=None, p99_9=None, mean=None, max=None)
        # One call for the four: one partition of the values instead of four (same ranks).
        ranked = np.percentile(arr, [q for _, q in PERCENTILES], method="inverted_cdf")
        p50, p95, p99, p99_9 = (round(float(v), 3) for v in ranked)
        return cls(
            count=int(arr.size),
            p50=p50,
            p95=p95,
            p99=p99,
            p99_9=p99_9,
            mean=round(float(arr.mean()), 3),
            max=round(float(arr.max()), 3),
        )

    def to_json(self) -> dict[str, Any]:
        """``{count, p50, p95, p99, p99_9, mean, max}``."""
        return {
            "count": self.count,
            "p50": self.p50,
            "p95": self.p95,
            "p99": self.p99,
            "p99_9": self.p99_9,
            "mean": self.mean,
            "max": self.max,
        }


def distribution(values: Iterable[float] | pd.Series) -> dict[str, Any]:
    """Count, mean, max and the standard percentiles of ``values`` (``Distribution`` as JSON)."""
    return Distribution.of(values).to_json()
