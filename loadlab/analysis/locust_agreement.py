"""Does loadlab's record of a run agree with Locust's own statistics of it?

Every request loadlab records is also counted by Locust. Comparing the two, per
request name, catches a recorder that lost or invented rows: the counts must be
equal and the medians equal up to Locust's rounding (see :func:`locust_median`).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from loadlab.analysis.rundata import RunData

__all__ = ["LocustAgreement", "NameAgreement", "locust_agreement", "locust_median"]


@dataclass(frozen=True, slots=True, kw_only=True)
class NameAgreement:
    """One request name: loadlab's and Locust's count and median, and whether they match."""

    name: str
    loadlab_count: int
    locust_count: int
    count_match: bool
    loadlab_median_ms: float | None
    locust_median_ms: float | None
    median_match: bool

    def to_json(self) -> dict[str, Any]:
        """One entry of summary.json's ``locust.by_name``."""
        return {
            "name": self.name,
            "loadlab_count": self.loadlab_count,
            "locust_count": self.locust_count,
            "count_match": self.count_match,
            "loadlab_median_ms": self.loadlab_median_ms,
            "locust_median_ms": self.locust_median_ms,
            "median_match": self.median_match,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class LocustAgreement:
    """summary.json's ``locust`` section: the comparison per request name.

    ``source`` is the Locust file compared with (``locust_final.json`` or
    ``locust_stats.csv``); ``all_match`` is True when every name matches in
    count and median.
    """

    source: str
    by_name: tuple[NameAgreement, ...]
    all_match: bool

    def to_json(self) -> dict[str, Any]:
        """The section as summary.json holds it."""
        return {
            "source": self.source,
            "by_name": [row.to_json() for row in self.by_name],
            "all_match": self.all_match,
        }


def locust_agreement(run: RunData) -> LocustAgreement | None:
    """Compare loadlab's request rows with Locust's own statistics of the same run.

    The reference is ``locust_final.json``: Locust's stats entries read by the
    loadlab plugin at the same instant it sealed the recorder. Locust's
    ``locust_stats.csv`` is only a fallback, since Locust rewrites it once a second
    and its final version can miss the last second of requests. None when the
    run has neither (or ``locust_final.json`` cannot be read).
    """
    final = Path(run.path) / "locust_final.json"
    stats_csv = Path(run.path) / "locust_stats.csv"
    if final.exists():
        try:
            entries = json.loads(final.read_text())["entries"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        source = final.name
        locust = {
            str(e["name"]): (int(e["num_requests"]), _to_float(e.get("median_response_time")))
            for e in entries
        }
    elif stats_csv.exists():
        source = stats_csv.name
        with stats_csv.open(newline="") as fh:
            locust = {
                rec["Name"]: (
                    int(rec.get("Request Count") or 0),
                    _to_float(rec.get("Median Response Time")),
                )
                for rec in csv.DictReader(fh)
                if rec.get("Name") and rec.get("Name") != "Aggregated"
            }
    else:
        return None
    req = run.requests
    ours = req.groupby("name").size() if len(req) else pd.Series(dtype=int)
    rows: list[NameAgreement] = []
    for name in sorted(set(locust) | {str(n) for n in ours.index}):
        locust_count, locust_med = locust.get(name, (0, None))
        ours_count = int(ours.get(name, 0))
        ours_med = locust_median(req.loc[req["name"] == name, "latency_ms"]) if len(req) else None
        rows.append(
            NameAgreement(
                name=name,
                loadlab_count=ours_count,
                locust_count=locust_count,
                count_match=ours_count == locust_count,
                loadlab_median_ms=ours_med,
                locust_median_ms=locust_med,
                median_match=_median_match(ours_med, locust_med),
            )
        )
    return LocustAgreement(
        source=source,
        by_name=tuple(rows),
        all_match=all(r.count_match and r.median_match for r in rows),
    )


def locust_median(values: pd.Series) -> float | None:
    """The median Locust reports for these latencies, reproduced from the raw values.

    Locust buckets each response time to about two significant digits
    (``locust.stats.bucket_response_time``), walks the buckets from the top
    (``calculate_response_time_percentile``) and clamps the result to the exact
    min/max. Doing the same here makes the agreement check exact instead of
    "close enough": any difference is a real disagreement in the data.
    """
    clean = values.dropna()
    if not len(clean):
        return None
    buckets = clean.map(_locust_bucket).value_counts()
    total = len(clean)
    target = int(total * 0.5)
    processed = 0
    median = 0.0
    for bucket in sorted(buckets.index, reverse=True):
        processed += int(buckets[bucket])
        if total - processed <= target:
            median = float(bucket)
            break
    return float(min(max(median, float(clean.min())), float(clean.max())))


def _locust_bucket(ms: float) -> int:
    if ms < 100:
        return round(ms)
    digits = -1 if ms < 1000 else (-2 if ms < 10000 else -3)
    return int(round(ms, digits))


def _median_match(ours: float | None, theirs: float | None) -> bool:
    """Equal up to Locust's CSV formatting (it prints the median as a whole number)."""
    if ours is None or theirs is None:
        return ours is None and (theirs is None or theirs == 0)
    return bool(abs(ours - theirs) < 1.0)


def _to_float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "", "N/A") else None
    except ValueError:
        return None
