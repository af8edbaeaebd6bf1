"""Timeline plots for the HTML report (matplotlib, rendered to inline PNG)."""

from __future__ import annotations

import base64
import io
import math
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI; must precede pyplot
import matplotlib.pyplot as plt
import pandas as pd

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
