"""One column per run for ``loadlab compare``: which cold-start mitigation it ran, and its figures.

A Lambda run is ``on-demand``, ``provisioned N``, ``snapstart`` or ``in-handler init``
(combinations are joined with ``+``), as its manifest's target recorded the
function's configuration; a pods run is ``pods``. Each column holds latency,
TTFT, cold starts, their INIT (or restore) P50/P99 and the cost per 1,000
sessions on the platform as the run ran (:func:`~.estimate.own_model`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from loadlab.analysis.cost.estimate import cost_estimate, own_model
from loadlab.analysis.cost.usage import platform_of
from loadlab.analysis.prices import PriceTable
from loadlab.analysis.rundata import RunData
from loadlab.analysis.stats import percentile
from loadlab.analysis.summary import summarize
from loadlab.errors import LoadLabError

__all__ = ["MITIGATION_ROWS", "MitigationColumn", "mitigation_column", "mitigation_of"]

MITIGATION_ROWS: tuple[tuple[str, str, str], ...] = (
    ("turn latency P50", "latency_p50_ms", "ms"),
    ("turn latency P99", "latency_p99_ms", "ms"),
    ("TTFT P50", "ttft_p50_ms", "ms"),
    ("TTFT P99", "ttft_p99_ms", "ms"),
    ("cold starts", "cold_starts", "n"),
    ("init (or restore) P50", "init_p50_ms", "ms"),
    ("init (or restore) P99", "init_p99_ms", "ms"),
    ("init in warm turns P50", "warm_init_p50_ms", "ms"),
    ("cost per 1,000 sessions", "usd_per_1000_sessions", "usd"),
)
"""(label, key in :attr:`MitigationColumn.figures`, unit) in display order."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MitigationColumn:
    """One run's column: its name, its mitigation and its figures (None: not measured)."""

    name: str
    mitigation: str
    figures: Mapping[str, float | None]
    cost_model: str | None = None
    note: str | None = None


def _target(run: RunData) -> Mapping[str, Any]:
    target = run.manifest.get("target")
    return target if isinstance(target, dict) else {}


def mitigation_of(run: RunData) -> str:
    """The run's mitigation as its column is headed (``on-demand``, ``provisioned 4`` ...)."""
    if platform_of(run) == "pods":
        return "pods"
    target = _target(run)
    parts = []
    provisioned = target.get("provisioned_concurrency")
    if isinstance(provisioned, int | float) and provisioned > 0:
        parts.append(f"provisioned {int(provisioned)}")
    if target.get("snapstart"):
        parts.append("snapstart")
    if target.get("agent_init_in_handler"):
        parts.append("in-handler init")
    return " + ".join(parts) or "on-demand"


def _get(summary: Mapping[str, Any], *path: str) -> float | None:
    node: Any = summary
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return float(node) if isinstance(node, int | float) and not isinstance(node, bool) else None


def mitigation_column(run: RunData, prices: PriceTable, *, name: str) -> MitigationColumn:
    """The column of ``run`` (its cost is None, with a note, when it cannot be priced)."""
    summary = summarize(run).to_json()
    req = run.requests
    warm_init: float | None = None
    if _target(run).get("agent_init_in_handler") and len(req):
        warm = req[req["cold_start"].eq(False)]["init_ms"].dropna()
        warm_init = percentile(warm, 50) if len(warm) else None
    figures: dict[str, float | None] = {
        "latency_p50_ms": _get(summary, "turn_latency_ms", "all", "p50"),
        "latency_p99_ms": _get(summary, "turn_latency_ms", "all", "p99"),
        "ttft_p50_ms": _get(summary, "ttft_ms", "all", "p50"),
        "ttft_p99_ms": _get(summary, "ttft_ms", "all", "p99"),
        "cold_starts": _get(summary, "cold_starts", "count"),
        "init_p50_ms": _get(summary, "cold_starts", "init", "p50"),
        "init_p99_ms": _get(summary, "cold_starts", "init", "p99"),
        "warm_init_p50_ms": warm_init,
        "usd_per_1000_sessions": None,
    }
    model: str | None = None
    note: str | None = None
    try:
        estimate = cost_estimate(run, prices)
    except LoadLabError as exc:
        note = f"not priced: {exc.message}"
    else:
        model = own_model(estimate.usage)
        figures["usd_per_1000_sessions"] = estimate.model(model).per_1000_sessions_usd
    figures = {k: None if v is None or np.isnan(v) else v for k, v in figures.items()}
    return MitigationColumn(
        name=name, mitigation=mitigation_of(run), figures=figures, cost_model=model, note=note
    )
