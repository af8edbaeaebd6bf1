"""Downstream pressure: how hard the load and the faults pushed DynamoDB and the LLM.

Three views of one question, from the run directory only:

* **amplification**, from the turns table: what one shopper turn cost downstream
  (DynamoDB operations and capacity units, LLM calls and tokens) as the agent
  reported it, overall, by intent, and for turns overlapping a fault window vs
  the others (*retry amplification*: a 429 storm turns one LLM call per turn
  into two or three);
* **pressure series**, from ``pressure.parquet`` on the buckets of the run
  timeline (:func:`loadlab.analysis.timeseries.bucket_width`): Prometheus
  counters as per-second rates, gauges as sampled, CloudWatch datapoints over
  their period, and the agent's per-turn counts (spread over each turn) as a
  fallback;
* **headroom**: each peak against the quota or capacity in force (manifest
  ``extra.quotas``, changed by fault events), and the moment each quota was
  first hit (the first 429 or throttle any source saw).

Times in the JSON are seconds since the run started, like the rest of summary.json.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from loadlab.analysis.amplification import (
    amplification,
    attr_number,
    clears_faults,
    retry_amplification,
)
from loadlab.analysis.quota_hits import first_hits, first_hits_json
from loadlab.analysis.resample import (
    Column,
    SeriesInfo,
    cloudwatch_columns,
    prometheus_columns,
    turn_columns,
)
from loadlab.analysis.rundata import RunData
from loadlab.analysis.timeseries import bucket_width

__all__ = [
    "QUANTITIES",
    "QUOTAS",
    "LimitChange",
    "PressureSeries",
    "Quantity",
    "headroom",
    "peaks",
    "pressure_series",
    "pressure_summary",
]


@dataclass(frozen=True, slots=True)
class Quantity:
    """A downstream quantity read from the first source that has it.

    ``candidates`` are alternatives in order of preference; each is a tuple of
    series keys that are summed (prompt + completion tokens) and is used only
    when all of them are present. ``per_minute`` names the trailing-minute total
    derived from it (RPM, TPM).
    """

    name: str
    label: str
    unit: str
    group: Literal["llm", "ddb", "lambda"]
    candidates: tuple[tuple[str, ...], ...]
    per_minute: str | None = None


QUANTITIES: tuple[Quantity, ...] = (
    Quantity(
        name="llm_requests_per_s",
        label="LLM requests/s",
        unit="requests/s",
        group="llm",
        candidates=(
            ("prometheus:loadlab_llm_requests_total",),
            ("cloudwatch:AWS/Bedrock/Invocations:Sum",),
            ("turns:llm_calls",),
        ),
        per_minute="llm_rpm",
    ),
    Quantity(
        name="llm_429_per_s",
        label="LLM 429s/s",
        unit="429s/s",
        group="llm",
        candidates=(
            ("prometheus:loadlab_llm_rate_limited_total",),
            ("cloudwatch:AWS/Bedrock/InvocationThrottles:Sum",),
            ("turns:llm_throttles",),
        ),
    ),
    Quantity(
        name="llm_tokens_per_s",
        label="LLM tokens/s",
        unit="tokens/s",
        group="llm",
        candidates=(
            (
                "prometheus:loadlab_llm_prompt_tokens_total",
                "prometheus:loadlab_llm_completion_tokens_total",
            ),
            (
                "cloudwatch:AWS/Bedrock/InputTokenCount:Sum",
                "cloudwatch:AWS/Bedrock/OutputTokenCount:Sum",
            ),
            ("turns:tokens_in", "turns:tokens_out"),
        ),
        per_minute="llm_tpm",
    ),
    Quantity(
        name="llm_in_flight",
        label="LLM requests in flight",
        unit="requests",
        group="llm",
        candidates=(("prometheus:loadlab_llm_requests_in_flight",),),
    ),
    Quantity(
        name="ddb_calls_per_s",
        label="DynamoDB operations/s",
        unit="operations/s",
        group="ddb",
        candidates=(("prometheus:loadlab_ddb_requests_total",), ("turns:ddb_calls",)),
    ),
    Quantity(
        name="ddb_rcu_per_s",
        label="DynamoDB RCU/s",
        unit="RCU/s",
        group="ddb",
        candidates=(
            ("prometheus:loadlab_ddb_consumed_read_capacity_units_total",),
            ("prometheus:loadlab_ddb_consumed_rcu_total",),
            ("cloudwatch:AWS/DynamoDB/ConsumedReadCapacityUnits:Sum",),
            ("turns:ddb_rcu",),
        ),
    ),
    Quantity(
        name="ddb_wcu_per_s",
        label="DynamoDB WCU/s",
        unit="WCU/s",
        group="ddb",
        candidates=(
            ("prometheus:loadlab_ddb_consumed_write_capacity_units_total",),
            ("prometheus:loadlab_ddb_consumed_wcu_total",),
            ("cloudwatch:AWS/DynamoDB/ConsumedWriteCapacityUnits:Sum",),
            ("turns:ddb_wcu",),
        ),
    ),
    Quantity(
        name="ddb_throttles_per_s",
        label="DynamoDB throttles/s",
        unit="throttles/s",
        group="ddb",
        candidates=(
            ("prometheus:loadlab_ddb_throttled_requests_total",),
            (
                "prometheus:loadlab_ddb_read_throttle_events_total",
                "prometheus:loadlab_ddb_write_throttle_events_total",
            ),
            ("cloudwatch:AWS/DynamoDB/ThrottledRequests:Sum",),
            (
                "cloudwatch:AWS/DynamoDB/ReadThrottleEvents:Sum",
                "cloudwatch:AWS/DynamoDB/WriteThrottleEvents:Sum",
            ),
        ),
    ),
    Quantity(
        name="lambda_throttles_per_s",
        label="Lambda throttles/s",
        unit="throttles/s",
        group="lambda",
        candidates=(("cloudwatch:AWS/Lambda/Throttles:Sum",),),
    ),
)
"""The quantities the report plots and headroom compares, by name."""

QUOTAS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("llm_rpm", "llm_rpm", ("llm_rpm", "rpm")),
    ("llm_tpm", "llm_tpm", ("llm_tpm", "tpm")),
    ("ddb_rcu", "ddb_rcu_per_s", ("ddb_rcu", "rcu")),
    ("ddb_wcu", "ddb_wcu_per_s", ("ddb_wcu", "wcu")),
)
"""``(quota, quantity it limits, fault attribute names that set it)``.

The quota names are the keys of the manifest's ``extra.quotas``; RPM and TPM are
compared with the trailing-minute totals, RCU and WCU with per-second rates.
"""

_PER_MINUTE_UNITS = {"llm_rpm": "requests/min", "llm_tpm": "tokens/min"}


@dataclass(frozen=True, slots=True)
class LimitChange:
    """A quota changed by a fault event, from ``t`` until ``until`` (None: run end)."""

    quota: str
    t: float
    until: float | None
    value: float
    fault: str


@dataclass(frozen=True, slots=True)
class PressureSeries:
    """Every downstream series on the buckets of the run timeline.

    ``frame`` has ``t`` (bucket start, seconds since ``t0``) and one column per
    :class:`SeriesInfo`. Buckets outside the time a source was sampled are NaN;
    inside it, a counter that did not move is 0.
    """

    t0: float
    width_s: float
    frame: pd.DataFrame
    series: tuple[SeriesInfo, ...]
    base_limits: dict[str, float]
    limit_changes: tuple[LimitChange, ...]
    samples: dict[str, int]

    @property
    def has_samples(self) -> bool:
        """True when the run recorded any downstream sample (pressure.parquet rows)."""
        return any(self.samples.values())

    def values(self, name: str) -> tuple[np.ndarray[Any, Any], tuple[str, ...], str] | None:
        """Values per bucket of quantity ``name`` (or of its per-minute total, e.g.
        ``llm_rpm``), the series keys they came from and the unit; None without data."""
        for q in QUANTITIES:
            if name not in (q.name, q.per_minute):
                continue
            for keys in q.candidates:
                if all(k in self.frame for k in keys):
                    values = self.frame[list(keys)].sum(axis=1, min_count=1)
                    per_s = values.to_numpy(dtype="float64")
                    if name == q.name:
                        return per_s, keys, q.unit
                    return self._per_minute(per_s), keys, _PER_MINUTE_UNITS[name]
        return None

    def _per_minute(self, values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Per-second ``values`` as totals over the trailing minute ending with each bucket."""
        if self.width_s >= 60:
            return values * 60.0
        n = max(1, round(60.0 / self.width_s))
        counts = pd.Series(values * self.width_s)
        return counts.rolling(n, min_periods=1).sum().to_numpy(dtype="float64")

    def limit(self, quota: str) -> np.ndarray[Any, Any] | None:
        """The quota in force in each bucket (NaN where unknown), or None if never known."""
        key = f"limit:{quota}"
        return self.frame[key].to_numpy(dtype="float64") if key in self.frame else None


def pressure_series(run: RunData, *, width_s: float | None = None) -> PressureSeries:
    """Every pressure series of ``run`` on its timeline buckets (see :class:`PressureSeries`)."""
    duration = max(run.t_end - run.t0, 1.0)
    width = width_s or bucket_width(duration)
    n = math.ceil(duration / width) or 1
    edges = run.t0 + np.arange(n + 1) * width
    columns: dict[str, np.ndarray[Any, Any]] = {}
    infos: list[SeriesInfo] = []
    pressure = run.pressure
    samples: dict[str, int] = {}
    found: list[Column] = []
    if len(pressure):
        samples = {str(k): int(v) for k, v in pressure["source"].value_counts().items()}
        prom = pressure[pressure["source"] == "prometheus"]
        if len(prom):
            found += prometheus_columns(prom, edges)
        cw = pressure[pressure["source"] == "cloudwatch"]
        if len(cw):
            found += cloudwatch_columns(cw, edges)
    found += turn_columns(run.turns, edges)
    for info, values in found:
        columns[info.key] = values
        infos.append(info)
    base, changes = _limits(run)
    mids = (edges[:-1] + edges[1:]) / 2
    for quota, _quantity, _names in QUOTAS:
        own = [c for c in changes if c.quota == quota]
        if quota not in base and not own:
            continue
        limit = np.full(n, base.get(quota, math.nan))
        for change in own:  # in time order: a later change overrides an earlier one
            until = math.inf if change.until is None else change.until
            limit[(mids >= change.t) & (mids < until)] = change.value
        columns[f"limit:{quota}"] = limit
        infos.append(SeriesInfo(f"limit:{quota}", "quota", quota, None, "limit", "", len(own) + 1))
    frame = pd.DataFrame({"t": edges[:-1] - run.t0, **columns})
    return PressureSeries(
        t0=run.t0,
        width_s=width,
        frame=frame,
        series=tuple(infos),
        base_limits=base,
        limit_changes=tuple(changes),
        samples=samples,
    )


def _limits(run: RunData) -> tuple[dict[str, float], list[LimitChange]]:
    """Quotas configured in the manifest, and the changes fault events announced.

    A change lasts until its ``expires_at``, or until an event on the same target
    clears the faults (``active: false``), whichever comes first.
    """
    extra = run.manifest.get("extra")
    quotas = extra.get("quotas") if isinstance(extra, dict) else None
    base: dict[str, float] = {}
    for quota, _quantity, _names in QUOTAS:
        value = attr_number(quotas, quota) if isinstance(quotas, dict) else None
        if value is not None:
            base[quota] = value
    ev = run.events
    rows = ev[ev["kind"] == "fault"] if len(ev) else ev
    found: list[tuple[LimitChange, str | None]] = []
    clears: list[tuple[float, str | None]] = []
    for t, name, target, attrs in zip(
        rows["t"].astype(float), rows["name"], rows["target"], rows["attrs"], strict=True
    ):
        a = attrs if isinstance(attrs, dict) else {}
        on = None if not isinstance(target, str) else target
        if clears_faults(a):
            clears.append((float(t), on))
        expires = attr_number(a, "expires_at")
        # The LLM simulator and the DynamoDB gate take limits per *simulated* second
        # or minute; a fault that says its time_scale is converted to real time.
        scale = attr_number(a, "time_scale") or 1.0
        for quota, _quantity, names in QUOTAS:
            value = next((v for v in (attr_number(a, k) for k in names) if v is not None), None)
            if value is not None:
                value = value / scale if scale > 0 else value
                until = expires if expires is not None and expires > t else None
                found.append((LimitChange(quota, float(t), until, value, str(name)), on))
    changes = []
    for change, on in found:
        ends = [t for t, target in clears if target == on and t > change.t]
        if change.until is not None:
            ends.append(change.until)
        changes.append(replace(change, until=min(ends)) if ends else change)
    return base, sorted(changes, key=lambda c: c.t)


def pressure_summary(run: RunData, *, series: PressureSeries | None = None) -> dict[str, Any]:
    """The ``pressure`` section of summary.json.

    Keys: ``bucket_s``, ``sources`` (sources of pressure.parquet rows, sorted),
    ``samples`` (rows per source), ``amplification``, ``retry_amplification``,
    ``peaks`` (per quantity: ``value``, ``t``, ``label``, ``unit``, ``source``,
    ``series``),
    ``headroom`` (per quota with a known limit), ``first_hit`` (per family) and
    ``series`` (every sampled series with its peak).
    """
    ps = series or pressure_series(run)
    return {
        "bucket_s": ps.width_s,
        "sources": sorted(ps.samples),
        "samples": dict(sorted(ps.samples.items())),
        "amplification": amplification(run.turns),
        "retry_amplification": retry_amplification(run),
        "peaks": peaks(ps),
        "headroom": headroom(ps),
        "first_hit": first_hits_json(first_hits(run), run.t0),
        "series": [
            {
                "key": info.key,
                "source": info.source,
                "metric": info.metric,
                "stat": info.stat,
                "kind": info.kind,
                "unit": info.unit,
                "samples": info.samples,
            }
            | _peak(ps, ps.frame[info.key].to_numpy(dtype="float64"))
            for info in ps.series
            if info.source in ("prometheus", "cloudwatch")
        ],
    }


def peaks(ps: PressureSeries) -> dict[str, Any]:
    """Per quantity (and per-minute total) with data: its peak bucket, unit and source.

    Rates are means over one bucket (``ps.width_s``); RPM and TPM totals over the
    trailing minute ending with the bucket at ``t``.
    """
    out: dict[str, Any] = {}
    for q in QUANTITIES:
        for name in (q.name, q.per_minute):
            got = ps.values(name) if name else None
            if name is None or got is None:
                continue
            values, keys, unit = got
            label = q.label if name == q.name else f"{q.label.removesuffix('/s')} per minute"
            out[name] = _peak(ps, values) | {
                "label": label,
                "unit": unit,
                "source": keys[0].split(":", 1)[0],
                "series": list(keys),
            }
    return out


def headroom(ps: PressureSeries) -> dict[str, Any]:
    """Per quota with a known limit: the peak against the limit in force at each bucket.

    ``peak_utilisation`` is the highest value/limit over the buckets (above 1: the
    demand went past the quota, refused requests included); ``headroom`` is
    ``1 - peak_utilisation``. ``limit`` is the configured value (manifest), and
    ``limit_changes`` what fault events set, with times relative to the run start.
    """
    out: dict[str, Any] = {}
    for quota, quantity, _names in QUOTAS:
        limit = ps.limit(quota)
        if limit is None:
            continue
        entry: dict[str, Any] = {
            "quantity": quantity,
            "limit": ps.base_limits.get(quota),
            "limit_changes": [
                {
                    "t": c.t - ps.t0,
                    "until": None if c.until is None else c.until - ps.t0,
                    "value": c.value,
                    "fault": c.fault,
                }
                for c in ps.limit_changes
                if c.quota == quota
            ],
            "unit": None,
            "source": None,
            "peak": None,
            "t_peak": None,
            "peak_utilisation": None,
            "t_peak_utilisation": None,
            "headroom": None,
        }
        got = ps.values(quantity)
        if got is not None:
            values, keys, unit = got
            top = _peak(ps, values)
            entry.update(unit=unit, source=keys[0].split(":", 1)[0], peak=top["value"])
            entry["t_peak"] = top["t"]
            with np.errstate(divide="ignore", invalid="ignore"):
                utilisation = np.where(limit > 0, values / limit, np.nan)
            used = _peak(ps, utilisation)
            if used["value"] is not None:
                entry["peak_utilisation"] = used["value"]
                entry["t_peak_utilisation"] = used["t"]
                entry["headroom"] = 1.0 - used["value"]
        out[quota] = entry
    return out


def _peak(ps: PressureSeries, values: np.ndarray[Any, Any]) -> dict[str, Any]:
    """``{"value", "t"}`` of the highest bucket (the earliest of equals); None without data."""
    if not values.size or np.isnan(values).all():
        return {"value": None, "t": None}
    i = int(np.nanargmax(values))
    return {"value": float(values[i]), "t": float(ps.frame["t"].iloc[i])}
