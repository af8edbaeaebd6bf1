"""The billable figures of a run, read from its run directory (:func:`measured_usage`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from loadlab.analysis.coldstarts import cold_start_analysis
from loadlab.analysis.cost.model import NOT_SERVED, PLATFORMS, Platform, Usage
from loadlab.analysis.rundata import RunData
from loadlab.errors import ConfigError, RunDirectoryError

__all__ = ["measured_usage", "platform_of"]


def platform_of(run: RunData) -> Platform | None:
    """``lambda`` or ``pods`` from the manifest's target, None when it does not say."""
    target = run.manifest.get("target")
    if not isinstance(target, dict):
        return None
    transport = target.get("transport") or target.get("kind")
    if transport == "lambda":
        return "lambda"
    if transport in ("http", "pods", "openai"):
        return "pods"
    return None


def measured_usage(run: RunData, *, platform: str | None = None) -> Usage:
    """The billable figures of ``run`` (see :class:`Usage`).

    ``platform`` overrides the manifest's target. Raises :class:`ConfigError`
    for an unknown platform and :class:`RunDirectoryError` when the run served
    no request at all.
    """
    chosen = platform or platform_of(run)
    if chosen not in PLATFORMS:
        target = run.manifest.get("target")
        said = chosen or (
            target.get("transport") or target.get("kind") if isinstance(target, dict) else None
        )
        raise ConfigError(
            f"unknown platform {said!r} for the run {run.path} (manifest target: {target!r})",
            hint="pass --platform lambda or --platform pods",
        )
    kind: Platform = "lambda" if chosen == "lambda" else "pods"
    req = run.requests
    served = (
        req[req["latency_ms"].notna() & ~req["error_kind"].isin(NOT_SERVED)] if len(req) else req
    )
    if not len(served):
        raise RunDirectoryError(
            f"the run {run.path} has no served request: the cost model needs invocations "
            "(request rows with a latency and no 'connect'/'throttled' error)",
            hint="price a run that reached its target",
        )
    cold = served["cold_start"].eq(True).to_numpy(dtype=bool)
    init_ms = served["init_ms"].to_numpy(dtype="float64")
    cold_init = init_ms[cold]
    if kind == "lambda" and cold.any() and np.isnan(cold_init).all():
        raise RunDirectoryError(
            f"the run {run.path} has {int(cold.sum())} cold starts but no INIT time for any",
            hint="the cost model needs init_ms (Lambda's REPORT line or the agent's meta event)",
        )
    compute_ms, compute_source = _compute_ms(run, served, kind, cold, init_ms)
    analysis = cold_start_analysis(run)
    alive = analysis.timeline["environments_alive"]
    pods = int(np.nanmax(alive)) if kind == "pods" and alive.notna().any() else None
    turns = run.turns
    memory, memory_source = _memory_mb(run)
    prewarmed = _prewarmed(served) if kind == "lambda" else 0
    init_source = analysis.init.source or "none"
    return Usage(
        platform=kind,
        run_s=max(run.t_end - run.t0, 0.0),
        sessions=len(run.sessions),
        turns=len(turns),
        invocations=len(served),
        compute_s=float(np.ceil(compute_ms).sum()) / 1000.0,
        compute_source=compute_source,
        cold_starts=int(cold.sum()),
        init_s=float(np.nansum(cold_init)) / 1000.0,
        init_source=init_source,
        environments=analysis.environments.created,
        peak_concurrency=analysis.environments.peak_concurrency,
        pods=pods,
        memory_mb=memory,
        memory_source=memory_source,
        provisioned=_recorded_provisioned(run),
        snapstart=_recorded_flag(run, "snapstart"),
        init_in_handler=_recorded_flag(run, "agent_init_in_handler"),
        prewarmed=prewarmed,
        ddb_rcu=float(turns["ddb_rcu"].sum()) if len(turns) else 0.0,
        ddb_wcu=float(turns["ddb_wcu"].sum()) if len(turns) else 0.0,
        tokens_in=float(turns["tokens_in"].sum()) if len(turns) else 0.0,
        tokens_out=float(turns["tokens_out"].sum()) if len(turns) else 0.0,
    )


def _compute_ms(
    run: RunData,
    served: pd.DataFrame,
    kind: Platform,
    cold: np.ndarray[Any, Any],
    init_ms: np.ndarray[Any, Any],
) -> tuple[np.ndarray[Any, Any], str]:
    """Per invocation: Duration without INIT (ms), and where it came from."""
    reported = _pressure_values(run, "duration_ms")
    if kind == "lambda" and len(reported):
        return reported, "Lambda REPORT Duration"
    latency = served["latency_ms"].to_numpy(dtype="float64")
    if kind == "lambda":
        # Locally the cold start happens inside the Invoke the caller waits for.
        less_init = np.where(cold & ~np.isnan(init_ms), latency - np.nan_to_num(init_ms), latency)
        return np.maximum(less_init, 0.0), "invoke time measured by the load generator, less INIT"
    return latency, "request latency on the pods (as the handler's duration)"


def _pressure_values(run: RunData, metric: str) -> np.ndarray[Any, Any]:
    pressure = run.pressure
    if not len(pressure):
        return np.zeros(0)
    rows = pressure[(pressure["source"] == "lambda") & (pressure["metric"] == metric)]
    return rows["value"].dropna().to_numpy(dtype="float64")


def _memory_mb(run: RunData) -> tuple[float | None, str]:
    reported = _pressure_values(run, "memory_size_mb")
    if len(reported):
        return float(np.max(reported)), "Lambda REPORT Memory Size"
    target = run.manifest.get("target")
    if isinstance(target, dict) and isinstance(target.get("memory_mb"), int | float):
        return float(target["memory_mb"]), "the function's configuration (manifest)"
    return None, "not recorded"


def _recorded_provisioned(run: RunData) -> int:
    target = run.manifest.get("target")
    value = target.get("provisioned_concurrency") if isinstance(target, dict) else None
    return int(value) if isinstance(value, int | float) and value > 0 else 0


def _prewarmed(served: pd.DataFrame) -> int:
    """Environments whose first invocation in the run was not a cold start."""
    with_id = served[served["instance_id"].notna()]
    if not len(with_id):
        return 0
    first = with_id.sort_values("t_start", kind="stable").groupby("instance_id").head(1)
    return int(first["cold_start"].eq(False).sum())


def _recorded_flag(run: RunData, key: str) -> bool:
    target = run.manifest.get("target")
    value = target.get(key) if isinstance(target, dict) else None
    return bool(value) and value is not False
