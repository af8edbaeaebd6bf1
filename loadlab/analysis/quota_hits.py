"""The moment each downstream quota was first hit, from every source that can tell.

A quota is *hit* when a request was refused for it: a 429 from the LLM, a
throttled DynamoDB request, a throttled Lambda invocation, a 429 from the agent
endpoint itself. Each source sees that with its own resolution, so each hit is
an interval ``(not_before, t]`` that certainly holds the first refusal that
source saw:

* ``turns``: a turn whose agent-reported ``llm_throttles`` is non-zero, some
  time between its start and its end;
* ``prometheus``: a throttle counter that increased between two scrapes (a drop
  is a restart; the first scrape of a series is its baseline, since a
  long-lived process may carry counts from before the run, while a labelled
  series that appears later started from zero: see :func:`counter_samples`);
* ``cloudwatch``: a throttle metric above zero over a datapoint's period;
* ``requests``: an agent request answered 429 (or recorded as ``throttled``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from loadlab.analysis.rundata import RunData

__all__ = [
    "THROTTLE_EVIDENCE",
    "Hit",
    "counter_samples",
    "counter_steps",
    "dimensions",
    "first_hits",
    "first_hits_json",
    "period_of",
    "scrape_times",
]

THROTTLE_EVIDENCE: tuple[
    tuple[str, tuple[str, ...], tuple[tuple[str, str, str], ...], tuple[str, ...]], ...
] = (
    (
        "llm",
        ("loadlab_llm_rate_limited_total",),
        (("loadlab_llm_requests_total", "status", "429"),),
        ("AWS/Bedrock/InvocationThrottles",),
    ),
    (
        "ddb",
        (
            "loadlab_ddb_throttled_requests_total",
            "loadlab_ddb_read_throttle_events_total",
            "loadlab_ddb_write_throttle_events_total",
        ),
        (),
        (
            "AWS/DynamoDB/ThrottledRequests",
            "AWS/DynamoDB/ReadThrottleEvents",
            "AWS/DynamoDB/WriteThrottleEvents",
        ),
    ),
    ("lambda", (), (), ("AWS/Lambda/Throttles",)),
)
"""Per family: Prometheus throttle counters, ``(counter, label, value)`` series that
count refusals (429 responses), and CloudWatch throttle metrics."""


@dataclass(frozen=True, slots=True)
class Hit:
    """A source's first evidence of a refusal: it happened in ``(not_before, t]`` (epoch s).

    ``reason`` is the quota a refusal names (the LLM simulator's ``reason`` label:
    ``rpm``, ``tpm``, ``concurrency``, ``fault``), when the source says.
    """

    family: str
    source: str
    t: float
    not_before: float
    evidence: str
    reason: str | None = None


def first_hits(run: RunData) -> dict[str, list[Hit]]:
    """Per family (``llm``, ``ddb``, ``lambda``, ``agent``), every first hit found.

    One hit per Prometheus series and CloudWatch metric, at most one from the turns
    and one from the requests, earliest ``t`` first; families without any are absent.
    """
    hits: dict[str, list[Hit]] = {}
    pressure = run.pressure
    prom = pressure[pressure["source"] == "prometheus"] if len(pressure) else pressure
    cw = pressure[pressure["source"] == "cloudwatch"] if len(pressure) else pressure
    for family, counters, matches, cw_metrics in THROTTLE_EVIDENCE:
        found: list[Hit] = []
        if len(prom):
            found += _counter_hits(family, prom, counters, matches, run.t0)
        if len(cw):
            found += _cloudwatch_hits(family, cw, cw_metrics, run.t0)
        if family == "llm":
            found += _turn_hits(run.turns)
        if found:
            hits[family] = sorted(found, key=lambda h: (h.t, h.source, h.evidence))
    agent = _request_hits(run.requests)
    if agent:
        hits["agent"] = agent
    return hits


def first_hits_json(hits: dict[str, list[Hit]], t0: float) -> dict[str, Any]:
    """The ``first_hit`` section of summary.json: per family, the earliest hit and each
    source's, and per ``reason`` the first time it was named; times relative to ``t0``."""
    out: dict[str, Any] = {}
    for family, found in hits.items():
        first = found[0]
        sources: dict[str, Any] = {}
        by_reason: dict[str, float] = {}
        for hit in found:  # earliest first, so the first of each wins
            sources.setdefault(hit.source, _hit_json(hit, t0))
            if hit.reason is not None:
                by_reason.setdefault(hit.reason, hit.t - t0)
        out[family] = _hit_json(first, t0) | {
            "t_epoch": first.t,
            "sources": sources,
            "by_reason": by_reason,
        }
    return out


def _hit_json(hit: Hit, t0: float) -> dict[str, Any]:
    return {
        "t": hit.t - t0,
        "not_before": hit.not_before - t0,
        "source": hit.source,
        "evidence": hit.evidence,
    }


def _counter_hits(
    family: str,
    rows: pd.DataFrame,
    counters: tuple[str, ...],
    matches: tuple[tuple[str, str, str], ...],
    t0: float,
) -> list[Hit]:
    wanted = dict.fromkeys(counters, ("", "")) | {m: (lbl, v) for m, lbl, v in matches}
    out: list[Hit] = []
    scrapes = scrape_times(rows)
    for (metric, dims_text), series in rows[rows["metric"].isin(list(wanted))].groupby(
        ["metric", "dimensions_json"], sort=True
    ):
        dims = dimensions(dims_text)
        label, value = wanted[str(metric)]
        if label and str(dims.get(label)) != value:
            continue
        t, v = counter_samples(series, scrapes)
        step = counter_steps(v)
        idx = np.flatnonzero((step > 0) & (t[1:] >= t0))
        if not idx.size:
            continue
        i = int(idx[0])
        labels = ",".join(f"{k}={dims[k]}" for k in sorted(dims))
        out.append(
            Hit(
                family=family,
                source="prometheus",
                t=float(t[i + 1]),
                not_before=float(t[i]),
                evidence=f"{metric}{{{labels}}} +{step[i]:g}",
                reason=None if dims.get("reason") is None else str(dims["reason"]),
            )
        )
    return out


def _cloudwatch_hits(
    family: str, rows: pd.DataFrame, metrics: tuple[str, ...], t0: float
) -> list[Hit]:
    out: list[Hit] = []
    for metric, one in rows[rows["metric"].isin(list(metrics))].groupby("metric", sort=True):
        dims = one["dimensions_json"].map(dimensions)
        period = np.array([period_of(d) for d in dims], dtype="float64")
        t = one["t"].to_numpy(dtype="float64")
        v = one["value"].to_numpy(dtype="float64")
        idx = np.flatnonzero((v > 0) & (t + period >= t0))
        if not idx.size:
            continue
        i = int(idx[np.argmin(t[idx])])
        d = dims.iloc[i]
        out.append(
            Hit(
                family=family,
                source="cloudwatch",
                t=float(t[i] + period[i]),
                not_before=float(t[i]),
                evidence=f"{metric} {d.get('stat', 'value')}={v[i]:g} over {period[i]:g} s",
            )
        )
    return out


def _turn_hits(turns: pd.DataFrame) -> list[Hit]:
    if not len(turns):
        return []
    throttled = turns[turns["llm_throttles"].fillna(0) > 0]
    if not len(throttled):
        return []
    row = throttled.iloc[int(np.argmin(throttled["t_end"].to_numpy(dtype="float64")))]
    return [
        Hit(
            family="llm",
            source="turns",
            t=float(row["t_end"]),
            not_before=float(row["t_start"]),
            evidence=(
                f"turn {int(row['turn_index'])} of {row['session_id']} ({row['intent']}) "
                f"saw {int(row['llm_throttles'])} LLM 429(s)"
            ),
        )
    ]


def _request_hits(req: pd.DataFrame) -> list[Hit]:
    if not len(req):
        return []
    refused = req[(req["status"] == 429) | (req["error_kind"] == "throttled")]
    if not len(refused):
        return []
    end = (refused["t_start"] + refused["latency_ms"] / 1000.0).to_numpy(dtype="float64")
    i = int(np.argmin(end))
    row = refused.iloc[i]
    return [
        Hit(
            family="agent",
            source="requests",
            t=float(end[i]),
            not_before=float(row["t_start"]),
            evidence=f"{row['name']} answered {int(row['status'])} ({row['error_kind']})",
        )
    ]


def period_of(dims: dict[str, Any]) -> float:
    """A CloudWatch datapoint's period in seconds (``period_s`` or ``period``; 60 if absent)."""
    for key in ("period_s", "period"):
        try:
            period = float(dims[key])
        except (KeyError, TypeError, ValueError):
            continue
        if period > 0 and math.isfinite(period):
            return period
    return 60.0


def counter_steps(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Increase of a counter between consecutive samples (one fewer than samples).

    A drop means the process restarted and its counter began again from zero, so
    the increase over that interval is the new value (as Prometheus ``increase``).
    """
    v = np.asarray(values, dtype="float64")
    if v.size < 2:
        return np.zeros(0)
    delta = np.diff(v)
    return np.asarray(np.where(delta >= 0, delta, v[1:]))


def scrape_times(rows: pd.DataFrame) -> dict[str, np.ndarray[Any, Any]]:
    """The sorted times each Prometheus ``instance`` of ``rows`` was scraped.

    An instance was scraped whenever any of its series has a sample.
    """
    instance_of = {
        d: str(dimensions(d).get("instance", "")) for d in rows["dimensions_json"].unique()
    }
    instance = rows["dimensions_json"].map(instance_of)
    return {
        str(name): np.unique(times.to_numpy(dtype="float64"))
        for name, times in rows["t"].groupby(instance, sort=False)
    }


def counter_samples(
    series: pd.DataFrame, scrapes: dict[str, np.ndarray[Any, Any]]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """One counter series' ``(t, value)`` in time order, one sample per instant.

    Prometheus clients export a labelled counter only once it was first
    incremented (the first 429 of reason ``tpm`` creates that series), so a series
    missing from an earlier scrape of its instance is given a 0 at the scrape
    before it appeared. A series present from the instance's first scrape keeps
    that first sample as its baseline: a long-lived process may carry counts from
    before the run.
    """
    one = series.sort_values("t", kind="stable").drop_duplicates("t", keep="last")
    t = one["t"].to_numpy(dtype="float64")
    v = one["value"].to_numpy(dtype="float64")
    if not t.size:
        return t, v
    instance = str(dimensions(one["dimensions_json"].iloc[0]).get("instance", ""))
    seen = scrapes.get(instance)
    if seen is not None:
        before = seen[seen < t[0]]
        if before.size:
            return np.concatenate([[before[-1]], t]), np.concatenate([[0.0], v])
    return t, v


def dimensions(text: Any) -> dict[str, Any]:
    """The labels or dimensions of a pressure row (``{}`` when missing or malformed)."""
    try:
        value = json.loads(text) if isinstance(text, str) else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
