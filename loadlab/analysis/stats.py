"""Percentiles from exact samples.

loadlab computes every percentile from the raw values it recorded, never from
Locust's rounded response-time buckets. The method is nearest-rank
(``numpy``'s ``inverted_cdf``): the reported P99 is a latency some request
really had, which is what HdrHistogram and Locust (on its rounded values) also
report, so the two agree up to Locust's rounding.
"""

from __future__ import annotations

from collections.abc import Iterable
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


def distribution(values: Iterable[float] | pd.Series) -> dict[str, Any]:
    """Count, mean, max and the standard percentiles of ``values``."""
    series = pd.Series(values, dtype="float64").dropna()
    out: dict[str, Any] = {"count": int(series.size)}
    if series.size == 0:
        out.update({name: None for name, _ in PERCENTILES} | {"mean": None, "max": None})
        return out
    arr = series.to_numpy()
    for name, q in PERCENTILES:
        out[name] = round(float(np.percentile(arr, q, method="inverted_cdf")), 3)
    out["mean"] = round(float(arr.mean()), 3)
    out["max"] = round(float(arr.max()), 3)
    return out
