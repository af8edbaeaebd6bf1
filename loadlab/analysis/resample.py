"""Downstream samples onto the buckets of the run timeline.

Each source becomes one column per metric, every label set or dimension set of
the metric combined into it:

* Prometheus counters (``*_total``, ``*_count``, ``*_sum``) become per-second
  rates: the increase between two scrapes (a drop is a restart from zero; a
  labelled series appearing mid-run starts from zero) is spread evenly over the
  interval, so a bucket gets its share exactly;
  gauges are the mean of each label set's samples in the bucket (held until
  its next sample), summed over label sets (instances);
* CloudWatch ``Sum``/``SampleCount`` datapoints become per-second rates spread
  over their period; other statistics are held over their period;
* the agent's per-turn counts become rates spread over each turn's duration.

A bucket less than half inside the span a source was sampled is NaN (unknown),
not zero.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from loadlab.analysis.amplification import TURN_COSTS
from loadlab.analysis.quota_hits import (
    counter_samples,
    counter_steps,
    dimensions,
    period_of,
    scrape_times,
)

__all__ = [
    "Column",
    "SeriesInfo",
    "SeriesKind",
    "cloudwatch_columns",
    "counter_increase",
    "prometheus_columns",
    "turn_columns",
]

SeriesKind = Literal["rate", "gauge", "period", "limit"]

# Histogram buckets multiply series by ten for no pressure insight; ``_created``
# is a timestamp, not a measurement.
_PROMETHEUS_SKIPPED = ("_bucket", "_created")
_PROMETHEUS_COUNTERS = ("_total", "_count", "_sum")
_CLOUDWATCH_SUMS = ("Sum", "SampleCount")


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    """One column of :attr:`loadlab.analysis.pressure.PressureSeries.frame`.

    ``key`` is ``prometheus:<metric>``, ``cloudwatch:<Namespace/Metric>:<stat>``,
    ``turns:<column>`` or ``limit:<quota>``; the values of every label set or
    dimension set of a metric are combined into it (summed, except CloudWatch
    ``Maximum``/``Minimum``/``Average``).
    """

    key: str
    source: str
    metric: str
    stat: str | None
    kind: SeriesKind
    unit: str
    samples: int


Column = tuple[SeriesInfo, "np.ndarray[Any, Any]"]
"""A series and its value per bucket."""


def counter_increase(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Cumulative increase of a counter at each of its samples (0 at the first).

    A drop is a restart from zero (see :func:`loadlab.analysis.quota_hits.counter_steps`).
    """
    v = np.asarray(values, dtype="float64")
    if v.size == 0:
        return v
    return np.concatenate([[0.0], np.cumsum(counter_steps(v))])


def prometheus_columns(rows: pd.DataFrame, edges: np.ndarray[Any, Any]) -> list[Column]:
    """One column per Prometheus metric of ``rows`` (histogram buckets skipped)."""
    out: list[Column] = []
    scrapes = scrape_times(rows)
    covered = _coverage(edges, float(rows["t"].min()), float(rows["t"].max()))
    width = float(edges[1] - edges[0])
    for metric, group in rows.groupby("metric", sort=True):
        name = str(metric)
        if name.endswith(_PROMETHEUS_SKIPPED):
            continue
        kind: SeriesKind
        if name.endswith(_PROMETHEUS_COUNTERS):
            total = np.zeros(len(edges) - 1)
            for _, series in group.groupby("dimensions_json", sort=True):
                t, v = counter_samples(series, scrapes)
                total += np.diff(np.interp(edges, t, counter_increase(v)))
            values, kind, unit = total / width, "rate", "/s"
        else:
            values, kind, unit = _gauge(group, edges), "gauge", ""
        info = SeriesInfo(f"prometheus:{name}", "prometheus", name, None, kind, unit, len(group))
        out.append((info, np.where(covered, values, np.nan)))
    return out


def _each_series(
    group: pd.DataFrame,
) -> Iterable[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]:
    """``(t, value)`` arrays of each label set, in time order, one sample per instant."""
    for _, series in group.groupby("dimensions_json", sort=True):
        one = series.sort_values("t", kind="stable").drop_duplicates("t", keep="last")
        yield one["t"].to_numpy(dtype="float64"), one["value"].to_numpy(dtype="float64")


def _gauge(group: pd.DataFrame, edges: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Each label set's mean per bucket, held until its next sample, summed over label sets.

    A gauge keeps its value between scrapes, so a bucket without a sample of a label
    set (inside the span it was scraped) takes that set's last value.
    """
    n = len(edges) - 1
    width = float(edges[1] - edges[0])
    means = []
    for t, v in _each_series(group):
        b = np.floor((t - edges[0]) / width).astype("int64")
        keep = (b >= 0) & (b < n)
        if not keep.any():
            continue
        sums = np.bincount(b[keep], weights=v[keep], minlength=n)
        counts = np.bincount(b[keep], minlength=n)
        mean = pd.Series(np.where(counts > 0, sums / np.maximum(counts, 1), np.nan))
        held = mean.ffill().to_numpy(dtype="float64", copy=True)
        held[np.arange(n) > b[keep].max()] = np.nan
        means.append(held)
    if not means:
        return np.full(n, np.nan)
    stacked = np.vstack(means)
    seen = ~np.isnan(stacked).all(axis=0)
    return np.where(seen, np.nansum(stacked, axis=0), np.nan)


def cloudwatch_columns(rows: pd.DataFrame, edges: np.ndarray[Any, Any]) -> list[Column]:
    """One column per CloudWatch metric and statistic of ``rows``."""
    out: list[Column] = []
    dims = rows["dimensions_json"].map(dimensions)
    frame = rows.assign(
        _stat=[str(d.get("stat") or "Value") for d in dims],
        _period=[period_of(d) for d in dims],
    )
    covered = _coverage(
        edges, float(frame["t"].min()), float((frame["t"] + frame["_period"]).max())
    )
    width = float(edges[1] - edges[0])
    mids = (edges[:-1] + edges[1:]) / 2
    for (metric, stat), group in frame.groupby(["metric", "_stat"], sort=True):
        per_set = []
        for _, series in group.groupby("dimensions_json", sort=True):
            # A poller re-reads recent periods; CloudWatch revises them as late data lands.
            one = series.sort_values("t", kind="stable").drop_duplicates("t", keep="last")
            t = one["t"].to_numpy(dtype="float64")
            v = one["value"].to_numpy(dtype="float64")
            p = one["_period"].to_numpy(dtype="float64")
            if stat in _CLOUDWATCH_SUMS:
                per_set.append(np.diff(_spread(edges, t, v, p)) / width)
            else:
                per_set.append(_held(mids, t, v, p))
        stacked = pd.DataFrame(np.vstack(per_set).T)
        kind: SeriesKind
        if stat in _CLOUDWATCH_SUMS:
            values, kind, unit = stacked.sum(axis=1).to_numpy(), "rate", "/s"
        else:
            # Skips NaN, and NaN where no dimension set has a datapoint.
            how = {"Minimum": "min", "Average": "mean"}.get(str(stat), "max")
            values, kind, unit = stacked.agg(how, axis=1).to_numpy(dtype="float64"), "period", ""
        key = f"cloudwatch:{metric}:{stat}"
        info = SeriesInfo(key, "cloudwatch", str(metric), str(stat), kind, unit, len(group))
        out.append((info, np.where(covered, values, np.nan)))
    return out


def _spread(
    edges: np.ndarray[Any, Any],
    t: np.ndarray[Any, Any],
    v: np.ndarray[Any, Any],
    p: np.ndarray[Any, Any],
) -> np.ndarray[Any, Any]:
    """Cumulative total at each edge, each datapoint spread evenly over its period.

    ``t`` is sorted and distinct; a period running into the next datapoint is cut there.
    """
    ends = np.minimum(t + p, np.concatenate([t[1:], [math.inf]]))
    xs = np.empty(2 * t.size)
    ys = np.empty(2 * t.size)
    total = np.cumsum(v)
    xs[0::2], xs[1::2] = t, ends
    ys[0::2], ys[1::2] = total - v, total
    return np.asarray(np.interp(edges, xs, ys))


def _held(
    mids: np.ndarray[Any, Any],
    t: np.ndarray[Any, Any],
    v: np.ndarray[Any, Any],
    p: np.ndarray[Any, Any],
) -> np.ndarray[Any, Any]:
    """The datapoint whose period covers each bucket's middle, NaN where none does."""
    pos = np.searchsorted(t, mids, side="right") - 1
    safe = np.clip(pos, 0, None)
    inside = (pos >= 0) & (mids < t[safe] + p[safe])
    return np.where(inside, v[safe], np.nan)


def turn_columns(turns: pd.DataFrame, edges: np.ndarray[Any, Any]) -> list[Column]:
    """The agent's per-turn counts as rates, each turn's spread evenly over its duration.

    The calls of a turn happen while it runs, so a 20 s turn's LLM calls do not all
    land in the second it ended.
    """
    if not len(turns):
        return []
    out: list[Column] = []
    # Relative times keep the products below well inside float64's precision.
    start = turns["t_start"].to_numpy(dtype="float64") - edges[0]
    end = np.maximum(turns["t_end"].to_numpy(dtype="float64") - edges[0], start)
    rel = edges - edges[0]
    width = float(edges[1] - edges[0])
    ramps = _Ramps(rel, start, end)
    for col in TURN_COSTS[1:]:
        weights = turns[col].fillna(0).to_numpy(dtype="float64")
        info = SeriesInfo(f"turns:{col}", "turns", col, None, "rate", "/s", len(turns))
        out.append((info, np.diff(ramps.sum(weights)) / width))
    return out


class _Ramps:
    """Sum over items of ``weight * clip((at - start) / (end - start), 0, 1)``, at each ``at``.

    With cumulative sums over the items sorted by start and by end, in
    O((items + points) log items): ``done(x) + x * (A_s(x) - A_e(x)) - (B_s(x) - B_e(x))``
    with ``a = w / d`` and ``b = w * start / d`` summed over items started (``_s``)
    or ended (``_e``) before ``x``. Instant items (``d = 0``) count just after their end.
    The items are sorted once, for every weight column (``sum``): sorting a million
    turns five times per column was most of ``loadlab report``'s time on a long run.
    Each column is put in the two orders once and ``a``, ``b`` computed in them (the
    same values, element by element, as computing them first and sorting after).
    """

    def __init__(
        self, at: np.ndarray[Any, Any], start: np.ndarray[Any, Any], end: np.ndarray[Any, Any]
    ) -> None:
        self.at = at
        duration = end - start
        ramped = duration > 1e-9
        duration = np.where(ramped, duration, 1.0)
        self.by_start = np.argsort(start, kind="stable")
        self.by_end = np.argsort(end, kind="stable")
        # An item ramps while start <= x <= end and is done once end < x, so an instant
        # item at t lands in the bucket [t, t + width) like every other event.
        self.started = np.searchsorted(start[self.by_start], at, side="right")
        self.ended = np.searchsorted(end[self.by_end], at, side="left")
        self.orders = tuple(
            (order, ramped[order], duration[order], start[order])
            for order in (self.by_start, self.by_end)
        )

    def sum(self, weights: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """The ramped sum of ``weights`` at each point."""
        (a_s, b_s, _), (a_e, b_e, w_e) = (
            self._terms(weights[order], ramped, duration, start)
            for order, ramped, duration, start in self.orders
        )
        return np.asarray(
            self._before(w_e, self.ended)
            + self.at * (self._before(a_s, self.started) - self._before(a_e, self.ended))
            - (self._before(b_s, self.started) - self._before(b_e, self.ended))
        )

    @staticmethod
    def _terms(
        weights: np.ndarray[Any, Any],
        ramped: np.ndarray[Any, Any],
        duration: np.ndarray[Any, Any],
        start: np.ndarray[Any, Any],
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        a = np.where(ramped, weights / duration, 0.0)
        return a, a * start, weights

    @staticmethod
    def _before(sorted_values: np.ndarray[Any, Any], index: np.ndarray[Any, Any]) -> Any:
        """The sum of the first ``index`` values (0 for none), for each index."""
        total = np.cumsum(sorted_values)
        return np.where(index > 0, total[np.maximum(index - 1, 0)], 0.0) if total.size else 0.0


def _coverage(edges: np.ndarray[Any, Any], first: float, last: float) -> np.ndarray[Any, Any]:
    """Buckets at least half inside ``[first, last]``, the span a source was sampled.

    Outside it a counter's rate is unknown (NaN), not zero.
    """
    inside = np.minimum(edges[1:], last) - np.maximum(edges[:-1], first)
    return np.asarray(inside >= (edges[1:] - edges[:-1]) / 2)
