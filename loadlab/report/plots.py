"""Timeline plots for the HTML report (matplotlib, rendered to inline PNG)."""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI; must precede pyplot
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from loadlab.analysis.pressure import QUANTITIES, PressureSeries

_FAULT_COLOR = "#d62728"


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _mark_faults(ax: Any, faults: list[dict[str, Any]]) -> None:
    for fault in faults:
        ax.axvline(fault["t"], color=_FAULT_COLOR, linestyle="--", linewidth=1)
        label = str(fault["name"])[:24]
        ax.annotate(
            label,
            (fault["t"], 1.0),
            xycoords=("data", "axes fraction"),
            fontsize=7,
            color=_FAULT_COLOR,
            rotation=90,
            va="top",
            ha="right",
        )


def timeline_plots(series: pd.DataFrame, faults: list[dict[str, Any]]) -> dict[str, str]:
    """Return base64 PNGs keyed by plot name: users, throughput, latency, errors."""
    t = series["t"]
    plots: dict[str, str] = {}
    specs: list[tuple[str, str, list[tuple[str, str]]]] = [
        (
            "users",
            "Concurrent users / active sessions",
            [("users", "Locust users"), ("active_sessions", "sessions")],
        ),
        (
            "throughput",
            "Throughput (per second)",
            [("turns_per_s", "turns/s"), ("requests_per_s", "requests/s")],
        ),
        (
            "latency",
            "Latency (ms)",
            [("p50_ms", "request P50"), ("p99_ms", "request P99"), ("ttft_p99_ms", "TTFT P99")],
        ),
        ("errors", "Errors per second", [("errors_per_s", "errors/s")]),
    ]
    for key, title, lines in specs:
        fig, ax = plt.subplots(figsize=(9, 2.6))
        drawn = False
        for col, label in lines:
            if col in series and series[col].notna().any():
                ax.plot(t, series[col], label=label, linewidth=1.4)
                drawn = True
        ax.set_title(title, fontsize=10, loc="left")
        ax.set_xlabel("seconds since start", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if not drawn:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", color="grey")
        elif len(lines) > 1:
            ax.legend(fontsize=8, loc="upper left")
        if key == "latency":
            top = series[[c for c, _ in lines if c in series]].max().max()
            if isinstance(top, float) and not math.isnan(top):
                ax.set_ylim(bottom=0)
        _mark_faults(ax, faults)
        plots[key] = _png(fig)
    return plots


def cold_start_plots(section: dict[str, Any], faults: list[dict[str, Any]]) -> dict[str, str]:
    """A base64 PNG keyed ``cold_starts``: cold starts per bucket and environments alive.

    ``section`` is summary.json's ``cold_starts``; drawn on the run timeline with
    the peak requests in flight and fault markers. Empty when the run recorded no
    instance ids or cold-start flags.
    """
    timeline = section.get("timeline")
    if not section.get("recorded") or not isinstance(timeline, dict):
        return {}
    frame = pd.DataFrame(timeline).astype("float64")
    width = float(section.get("bucket_s") or 1.0)
    fig, ax = plt.subplots(figsize=(9, 2.6))
    ax.bar(
        frame["t"],
        frame["cold_starts"],
        width=width,
        align="edge",
        color="#1f77b4",
        alpha=0.6,
        label="cold starts per bucket",
    )
    # Each step holds for its whole bucket, the last one included.
    edges = np.append(frame["t"].to_numpy(), frame["t"].iloc[-1] + width)

    def held(col: str) -> np.ndarray[Any, Any]:
        values = frame[col].to_numpy()
        return np.append(values, values[-1])

    if frame["environments_alive"].notna().any():
        ax.step(edges, held("environments_alive"), where="post", label="environments alive")
    ax.step(
        edges,
        held("peak_in_flight"),
        where="post",
        linestyle=":",
        color="black",
        label="peak requests in flight",
    )
    ax.set_title(f"Cold starts and environments ({width:g} s buckets)", fontsize=10, loc="left")
    ax.set_xlabel("seconds since start", fontsize=8)
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    _mark_faults(ax, faults)
    return {"cold_starts": _png(fig)}


@dataclass(frozen=True, slots=True)
class _Panel:
    """One axis of a pressure figure: quantities drawn together, and quota lines.

    ``quotas`` are ``(quota, scale)``: the limit in force, times ``scale`` to bring it
    to the panel's unit (an RPM quota on a requests/s panel is drawn at rpm / 60).
    """

    title: str
    quantities: tuple[str, ...]
    quotas: tuple[tuple[str, float], ...] = ()


_PRESSURE_FIGURES: tuple[tuple[str, str, str, tuple[_Panel, ...]], ...] = (
    (
        "pressure_llm",
        "LLM",
        "llm",
        (
            _Panel("requests/s", ("llm_requests_per_s", "llm_429_per_s"), (("llm_rpm", 1 / 60),)),
            _Panel("tokens/s", ("llm_tokens_per_s",), (("llm_tpm", 1 / 60),)),
            _Panel("in flight", ("llm_in_flight",)),
        ),
    ),
    (
        "pressure_ddb",
        "DynamoDB",
        "ddb",
        (
            _Panel(
                "per second",
                ("ddb_calls_per_s", "ddb_rcu_per_s", "ddb_wcu_per_s"),
                (("ddb_rcu", 1.0), ("ddb_wcu", 1.0)),
            ),
            _Panel("throttles/s", ("ddb_throttles_per_s",)),
        ),
    ),
    ("pressure_other", "Other downstream", "lambda", (_Panel("", ("lambda_throttles_per_s",)),)),
)
_OTHER_PANELS_MAX = 8
_HIT_COLOR = "#ff7f0e"


def pressure_plots(
    timeline: pd.DataFrame,
    pressure: PressureSeries,
    faults: list[dict[str, Any]],
    section: dict[str, Any],
) -> dict[str, str]:
    """Base64 PNGs of the downstream series on the run timeline, keyed ``pressure_*``.

    One figure each for the LLM, DynamoDB and the rest (every other sampled series),
    each with Locust users on top and one shared time axis, fault markers, the
    quotas in force and the first hit (``section`` is summary.json's ``pressure``).
    Empty when the run recorded no downstream samples.
    """
    if not pressure.has_samples:
        return {}
    labels = {q.name: q.label for q in QUANTITIES}
    drawn_keys: set[str] = set()
    plots: dict[str, str] = {}
    first_hit = section.get("first_hit") or {}
    for key, title, family, panels in _PRESSURE_FIGURES:
        rows: list[tuple[str, list[tuple[str, Any]], list[tuple[str, Any]]]] = []
        for panel in panels:
            lines = []
            for name in panel.quantities:
                got = pressure.values(name)
                if got is None or np.isnan(got[0]).all():
                    continue
                values, keys, _unit = got
                drawn_keys.update(keys)
                source = keys[0].split(":", 1)[0]
                suffix = " (agent-reported)" if source == "turns" else f" ({source})"
                lines.append((labels[name] + suffix, values))
            limits = []
            for quota, scale in panel.quotas:
                limit = pressure.limit(quota)
                if limit is not None and lines:
                    per = "" if scale == 1.0 else " / 60"
                    limits.append((f"{quota} quota{per}", limit * scale))
            if lines:
                rows.append((f"{title} {panel.title}".strip(), lines, limits))
        if key == "pressure_other":
            rows += _other_rows(pressure, drawn_keys)
        if rows:
            hit = first_hit.get(family) if isinstance(first_hit, dict) else None
            plots[key] = _pressure_figure(timeline, pressure, rows, faults, hit)
    return plots


def _other_rows(
    pressure: PressureSeries, drawn: set[str]
) -> list[tuple[str, list[tuple[str, Any]], list[tuple[str, Any]]]]:
    rest = sorted(
        (
            info
            for info in pressure.series
            if info.source in ("prometheus", "cloudwatch") and info.key not in drawn
        ),
        # The cloud's own view first, histogram sums and counts (latency) last.
        key=lambda i: (i.metric.endswith(("_sum", "_count")), i.source != "cloudwatch", i.key),
    )
    rows: list[tuple[str, list[tuple[str, Any]], list[tuple[str, Any]]]] = []
    for info in rest[:_OTHER_PANELS_MAX]:
        values = pressure.frame[info.key].to_numpy(dtype="float64")
        if not np.isfinite(values).any():
            continue
        unit = {"rate": "/s", "period": " per period"}.get(info.kind, "")
        stat = f" {info.stat}" if info.stat else ""
        rows.append((f"{info.source}: {info.metric}{stat}{unit}", [("", values)], []))
    if len(rest) > _OTHER_PANELS_MAX and rows:
        title, lines, limits = rows[-1]
        more = len(rest) - _OTHER_PANELS_MAX
        rows[-1] = (f"{title}   ({more} more series in summary.json)", lines, limits)
    return rows


def _pressure_figure(
    timeline: pd.DataFrame,
    pressure: PressureSeries,
    rows: list[tuple[str, list[tuple[str, Any]], list[tuple[str, Any]]]],
    faults: list[dict[str, Any]],
    hit: dict[str, Any] | None,
) -> str:
    fig, axes = plt.subplots(
        len(rows) + 1, 1, sharex=True, figsize=(9, 1.3 + 1.7 * len(rows)), squeeze=False
    )
    top = axes[0][0]
    if "users" in timeline and timeline["users"].notna().any():
        top.plot(timeline["t"], timeline["users"], label="Locust users", linewidth=1.2)
    if "active_sessions" in timeline:
        top.plot(timeline["t"], timeline["active_sessions"], label="sessions", linewidth=1.0)
    top.set_title("users", fontsize=9, loc="left")
    top.legend(fontsize=7, loc="upper left")
    _mark_faults(top, faults)
    t = pressure.frame["t"]
    for (title, lines, limits), row in zip(rows, axes[1:], strict=True):
        ax = row[0]
        for label, values in lines:
            # An unlimited capacity gauge reads +Inf; it has no place on a linear axis.
            finite = np.where(np.isfinite(values), values, np.nan)
            ax.plot(t, finite, label=label or None, linewidth=1.3)
        for label, values in limits:
            ax.step(t, values, where="post", label=label, linestyle=":", color="black")
        ax.set_title(title, fontsize=9, loc="left")
        if any(label for label, _ in [*lines, *limits]):
            ax.legend(fontsize=7, loc="upper left")
        for fault in faults:
            ax.axvline(fault["t"], color=_FAULT_COLOR, linestyle="--", linewidth=1)
        if hit and isinstance(hit.get("t"), int | float):
            ax.axvline(hit["t"], color=_HIT_COLOR, linestyle=":", linewidth=1.5)
    for row in axes:
        row[0].tick_params(labelsize=7)
        row[0].grid(alpha=0.3)
    if hit and isinstance(hit.get("t"), int | float):
        top.annotate(
            f"first hit ({hit.get('source')})",
            (hit["t"], 0.0),
            xycoords=("data", "axes fraction"),
            fontsize=7,
            color=_HIT_COLOR,
            rotation=90,
            va="bottom",
            ha="left",
        )
    axes[-1][0].set_xlabel("seconds since start", fontsize=8)
    return _png(fig)
