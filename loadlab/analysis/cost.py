"""What a run cost, and what it would cost on each platform, from what it measured.

:func:`measured_usage` reads the figures a bill is made of from a run
directory: invocations (requests the target served; throttled and unreachable
ones are not billed), compute time per invocation (Lambda's ``REPORT``
``Duration`` when the run has it, else the invocation time the load generator
measured less the environment's INIT), cold starts and their INIT time,
environments created, peak concurrency, pods alive at the peak, DynamoDB
read/write request units and LLM tokens (from the turn rows). :func:`cost_estimate`
prices that usage with a :class:`~loadlab.analysis.prices.PriceTable` on:

* ``lambda`` — Lambda on-demand: requests + duration GB-s + INIT GB-s (INIT
  is billed since August 2025);
* ``lambda_pc`` — Lambda with provisioned concurrency N: N x memory x the
  run's length at the provisioned rate, invocations on provisioned
  environments at the provisioned duration rate, and only the environments
  beyond N cold-start (and pay INIT);
* ``eks`` — pods on EKS nodes (node type, pods per node) for the run's length,
  plus the cluster fee;
* ``fargate`` — the same pods on Fargate (vCPU and GB per pod);
* ``active_cpu`` — active-CPU billing (AgentCore-style): CPU only while busy
  (``active_cpu_fraction`` of each invocation), memory for the whole of it.

DynamoDB and LLM tokens are the same on every platform (``shared``). A figure
measured on the run's own platform is ``measured``; the other platform's is
``projected`` from it (its notes say how). A model whose inputs the run does
not have is ``missing`` with the reason, never $0; the run's own platform
missing a figure raises :class:`~loadlab.errors.RunDirectoryError`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from loadlab.analysis.coldstarts import cold_start_analysis
from loadlab.analysis.prices import PriceTable
from loadlab.analysis.rundata import RunData
from loadlab.errors import ConfigError, RunDirectoryError

__all__ = [
    "HOURS_PER_MONTH",
    "PLATFORMS",
    "CostEstimate",
    "CostLine",
    "PlatformCost",
    "Usage",
    "break_even_between",
    "cost_estimate",
    "lambda_cost_per_million",
    "measured_usage",
    "provisioned_monthly",
]

Platform = Literal["lambda", "pods"]
PLATFORMS: tuple[Platform, ...] = ("lambda", "pods")
HOURS_PER_MONTH = 730.0
"""AWS's billing month (8,760 h / 12)."""

_NOT_SERVED = frozenset({"connect", "throttled"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """The billable figures of one run (seconds, MB, counts), and where each came from.

    ``compute_s`` is the sum over invocations of their duration rounded up to
    the millisecond, INIT excluded; ``init_s`` the sum of the cold starts'
    INIT. ``pods`` is the most pods alive at once (a pods run; None on Lambda).
    ``provisioned`` is the provisioned concurrency the run recorded (0: none),
    ``prewarmed`` the environments whose first invocation was warm.
    """

    platform: Platform
    run_s: float
    sessions: int
    turns: int
    invocations: int
    compute_s: float
    compute_source: str
    cold_starts: int
    init_s: float
    init_source: str
    environments: int
    peak_concurrency: int
    pods: int | None
    memory_mb: float | None
    memory_source: str
    provisioned: int
    prewarmed: int
    ddb_rcu: float
    ddb_wcu: float
    tokens_in: float
    tokens_out: float

    @property
    def mean_init_s(self) -> float | None:
        """The mean INIT of a cold start, None without one."""
        return self.init_s / self.cold_starts if self.cold_starts else None


@dataclass(frozen=True, slots=True, kw_only=True)
class CostLine:
    """One line of a bill: ``quantity`` ``unit`` x ``price`` (the table's ``price_key``)."""

    item: str
    quantity: float
    unit: str
    price_key: str
    price: float

    @property
    def usd(self) -> float:
        """The line's amount."""
        return self.quantity * self.price


@dataclass(frozen=True, slots=True, kw_only=True)
class PlatformCost:
    """One platform's bill for the run (``compute`` lines + the ``shared`` ones).

    ``basis`` is ``measured`` (the run's own platform), ``projected`` or
    ``missing`` (then ``missing`` says which figure, and there are no amounts).
    """

    model: str
    title: str
    basis: Literal["measured", "projected", "missing"]
    compute: tuple[CostLine, ...] = ()
    shared: tuple[CostLine, ...] = ()
    cold_starts: int | None = None
    notes: tuple[str, ...] = ()
    missing: str | None = None
    sessions: int = 0

    @property
    def compute_usd(self) -> float | None:
        """The platform's own charges (None when missing)."""
        return None if self.missing else math.fsum(line.usd for line in self.compute)

    @property
    def total_usd(self) -> float | None:
        """Compute plus shared charges (None when missing)."""
        compute = self.compute_usd
        return None if compute is None else compute + math.fsum(x.usd for x in self.shared)

    @property
    def per_1000_sessions_usd(self) -> float | None:
        """``total_usd`` per 1,000 sessions (None without sessions)."""
        total = self.total_usd
        return None if total is None or not self.sessions else total / self.sessions * 1000

    def to_json(self) -> dict[str, Any]:
        """The model as JSON (amounts in USD)."""
        return {
            "model": self.model,
            "title": self.title,
            "basis": self.basis,
            "missing": self.missing,
            "compute_usd": self.compute_usd,
            "total_usd": self.total_usd,
            "per_1000_sessions_usd": self.per_1000_sessions_usd,
            "cold_starts": self.cold_starts,
            "lines": [asdict(x) | {"usd": x.usd} for x in (*self.compute, *self.shared)],
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class CostEstimate:
    """A run's usage priced on every platform, and the Lambda/pods break-even."""

    usage: Usage
    prices_path: str
    region: str
    prices_date: str
    overridden: tuple[str, ...]
    platforms: tuple[PlatformCost, ...]
    break_even_requests_per_day: float | None
    break_even_note: str
    notes: tuple[str, ...] = field(default=())

    def model(self, name: str) -> PlatformCost:
        """The platform cost named ``name`` (``lambda``, ``lambda_pc``, ``eks`` ...)."""
        for platform in self.platforms:
            if platform.model == name:
                return platform
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        """The estimate as JSON."""
        return {
            "prices": {
                "path": self.prices_path,
                "region": self.region,
                "date": self.prices_date,
                "overridden": list(self.overridden),
            },
            "usage": asdict(self.usage),
            "platforms": [p.to_json() for p in self.platforms],
            "break_even_requests_per_day": self.break_even_requests_per_day,
            "break_even_note": self.break_even_note,
            "notes": list(self.notes),
        }


# -- the published arithmetic, as plain functions ---------------------------------


def lambda_cost_per_million(
    prices: PriceTable, *, memory_mb: float, duration_s: float, init_s: float = 0.0
) -> float:
    """USD per million on-demand invocations of ``duration_s`` (+ ``init_s`` of INIT each)."""
    gb = memory_mb / 1024.0
    per_invocation = prices.price("lambda_request") + (duration_s + init_s) * gb * prices.price(
        "lambda_gb_second"
    )
    return per_invocation * 1e6


def provisioned_monthly(
    prices: PriceTable,
    *,
    environments: int,
    memory_mb: float,
    busy_gb_s: float = 0.0,
    hours: float = HOURS_PER_MONTH,
) -> float:
    """USD a month for ``environments`` provisioned, plus ``busy_gb_s`` of duration on them."""
    gb = memory_mb / 1024.0
    idle = environments * gb * hours * 3600.0 * prices.price("lambda_pc_gb_second")
    return idle + busy_gb_s * prices.price("lambda_pc_duration_gb_second")


# -- usage --------------------------------------------------------------------------


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
        req[req["latency_ms"].notna() & ~req["error_kind"].isin(_NOT_SERVED)] if len(req) else req
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


# -- the estimate -------------------------------------------------------------------


def cost_estimate(run: RunData, prices: PriceTable, *, platform: str | None = None) -> CostEstimate:
    """Price ``run``'s usage on every platform (see the module doc)."""
    usage = measured_usage(run, platform=platform)
    shared = _shared_lines(usage, prices)
    platforms = (
        _lambda_on_demand(usage, prices, shared),
        _lambda_provisioned(usage, prices, shared),
        _eks(usage, prices, shared),
        _fargate(usage, prices, shared),
        _active_cpu(usage, prices, shared),
    )
    own = ("lambda", "lambda_pc") if usage.platform == "lambda" else ("eks", "fargate")
    for model in platforms:
        if model.model in own[:1] and model.missing:
            raise RunDirectoryError(
                f"cannot price the run {run.path} on its own platform: {model.missing}",
                hint="record the figure, or pass it with --set",
            )
    value, note = _break_even(usage, platforms)
    return CostEstimate(
        usage=usage,
        prices_path=prices.path,
        region=prices.region,
        prices_date=prices.date,
        overridden=prices.overridden,
        platforms=platforms,
        break_even_requests_per_day=value,
        break_even_note=note,
        notes=_usage_notes(usage),
    )


def _shared_lines(usage: Usage, prices: PriceTable) -> tuple[CostLine, ...]:
    return (
        CostLine(
            item="DynamoDB reads (on-demand)",
            quantity=usage.ddb_rcu,
            unit="read request units",
            price_key="dynamodb_read_request_unit",
            price=prices.price("dynamodb_read_request_unit"),
        ),
        CostLine(
            item="DynamoDB writes (on-demand)",
            quantity=usage.ddb_wcu,
            unit="write request units",
            price_key="dynamodb_write_request_unit",
            price=prices.price("dynamodb_write_request_unit"),
        ),
        CostLine(
            item="LLM input tokens",
            quantity=usage.tokens_in,
            unit="tokens",
            price_key="llm_input_token",
            price=prices.price("llm_input_token"),
        ),
        CostLine(
            item="LLM output tokens",
            quantity=usage.tokens_out,
            unit="tokens",
            price_key="llm_output_token",
            price=prices.price("llm_output_token"),
        ),
    )


def _memory_gb(usage: Usage, prices: PriceTable) -> tuple[float | None, str]:
    assumed = prices.number("lambda_memory_mb")
    if assumed > 0:
        return assumed / 1024.0, f"{assumed:g} MB (--set / price table)"
    if usage.memory_mb:
        return usage.memory_mb / 1024.0, f"{usage.memory_mb:g} MB ({usage.memory_source})"
    return None, ""


_NO_MEMORY = (
    "the function's memory size: the run recorded none (no REPORT line, no "
    "configuration in the manifest); pass --set lambda_memory_mb=MB"
)


def _lambda_cold(usage: Usage) -> tuple[int, float | None, str]:
    """Cold starts an on-demand Lambda would have for this run, and the INIT of each (s)."""
    if usage.platform == "lambda":
        # Environments provisioned before the run would have cold-started on demand.
        extra = usage.prewarmed if usage.provisioned else 0
        note = f"measured, plus the {extra} provisioned ones" if extra else "measured"
        return usage.cold_starts + extra, usage.mean_init_s, note
    # Each request in flight at the peak needs an environment of its own.
    return usage.peak_concurrency, usage.mean_init_s, "projected: one per request at peak"


def _lambda_on_demand(
    usage: Usage, prices: PriceTable, shared: tuple[CostLine, ...]
) -> PlatformCost:
    title = "Lambda on-demand"
    basis: Literal["measured", "projected"] = (
        "measured" if usage.platform == "lambda" else "projected"
    )
    gb, memory_note = _memory_gb(usage, prices)
    if gb is None:
        return PlatformCost(model="lambda", title=title, basis="missing", missing=_NO_MEMORY)
    cold, init_each, cold_note = _lambda_cold(usage)
    if cold and init_each is None:
        return PlatformCost(
            model="lambda",
            title=title,
            basis="missing",
            missing="the INIT time of a cold start: the run recorded none (init_ms)",
        )
    init_s = cold * (init_each or 0.0)
    return PlatformCost(
        model="lambda",
        title=title,
        basis=basis,
        sessions=usage.sessions,
        cold_starts=cold,
        compute=(
            _requests_line(usage, prices),
            CostLine(
                item="duration",
                quantity=usage.compute_s * gb,
                unit="GB-s",
                price_key="lambda_gb_second",
                price=prices.price("lambda_gb_second"),
            ),
            CostLine(
                item=f"INIT of {cold} cold starts",
                quantity=init_s * gb,
                unit="GB-s",
                price_key="lambda_gb_second",
                price=prices.price("lambda_gb_second"),
            ),
        ),
        shared=shared,
        notes=(f"memory {memory_note}", f"cold starts {cold_note}"),
    )


def _requests_line(usage: Usage, prices: PriceTable) -> CostLine:
    return CostLine(
        item="requests",
        quantity=float(usage.invocations),
        unit="invocations",
        price_key="lambda_request",
        price=prices.price("lambda_request"),
    )


def _lambda_provisioned(
    usage: Usage, prices: PriceTable, shared: tuple[CostLine, ...]
) -> PlatformCost:
    asked = int(prices.number("provisioned_concurrency"))
    if asked > 0:
        n, n_note = asked, "N from --set / the price table"
    elif usage.provisioned > 0:
        n, n_note = usage.provisioned, "N as the run recorded it"
    else:
        n, n_note = usage.peak_concurrency, "N = the measured peak concurrency (no cold start)"
    title = f"Lambda, provisioned concurrency {n}"
    measured = usage.platform == "lambda" and usage.provisioned == n and n > 0
    gb, memory_note = _memory_gb(usage, prices)
    if gb is None:
        return PlatformCost(model="lambda_pc", title=title, basis="missing", missing=_NO_MEMORY)
    on_demand_cold, init_each, _ = _lambda_cold(usage)
    created = usage.environments if usage.platform == "lambda" else 0
    environments = max(on_demand_cold, created, 1)
    cold = max(environments - n, 0)
    if cold and init_each is None:
        return PlatformCost(
            model="lambda_pc",
            title=title,
            basis="missing",
            missing="the INIT time of a cold start: the run recorded none (init_ms)",
        )
    share = min(n, environments) / environments
    return PlatformCost(
        model="lambda_pc",
        title=title,
        basis="measured" if measured else "projected",
        sessions=usage.sessions,
        cold_starts=cold,
        compute=(
            _requests_line(usage, prices),
            CostLine(
                item=f"{n} environments provisioned for the run ({usage.run_s:.0f} s)",
                quantity=n * gb * usage.run_s,
                unit="GB-s",
                price_key="lambda_pc_gb_second",
                price=prices.price("lambda_pc_gb_second"),
            ),
            CostLine(
                item=f"duration on provisioned environments ({share:.0%})",
                quantity=usage.compute_s * gb * share,
                unit="GB-s",
                price_key="lambda_pc_duration_gb_second",
                price=prices.price("lambda_pc_duration_gb_second"),
            ),
            CostLine(
                item="duration on on-demand environments",
                quantity=usage.compute_s * gb * (1 - share),
                unit="GB-s",
                price_key="lambda_gb_second",
                price=prices.price("lambda_gb_second"),
            ),
            CostLine(
                item=f"INIT of {cold} cold starts beyond N",
                quantity=cold * (init_each or 0.0) * gb,
                unit="GB-s",
                price_key="lambda_gb_second",
                price=prices.price("lambda_gb_second"),
            ),
        ),
        shared=shared,
        notes=(
            n_note,
            f"memory {memory_note}",
            f"{environments} environments, the first {min(n, environments)} provisioned; "
            f"invocations spread evenly over them",
            f"a month of {n} provisioned environments, idle: "
            f"${provisioned_monthly(prices, environments=n, memory_mb=gb * 1024):,.2f}",
        ),
    )


def _pods(usage: Usage, prices: PriceTable) -> tuple[int | None, str]:
    asked = int(prices.number("pods"))
    if asked > 0:
        return asked, "pods from --set / the price table"
    if usage.pods:
        return usage.pods, "pods alive at the run's peak (measured)"
    return None, ""


_NO_PODS = (
    "how many pods the load needs: a Lambda run does not measure it; pass --set pods=N "
    "(e.g. the replicas of the pods run of the same scenario)"
)


def _eks(usage: Usage, prices: PriceTable, shared: tuple[CostLine, ...]) -> PlatformCost:
    node_type = prices.text("node_type")
    title = f"EKS pods on {node_type} nodes"
    pods, pods_note = _pods(usage, prices)
    if pods is None:
        return PlatformCost(model="eks", title=title, basis="missing", missing=_NO_PODS)
    per_node = prices.number("pods_per_node")
    if per_node <= 0:
        raise ConfigError(f"pods_per_node must be > 0, not {per_node:g}")
    nodes = math.ceil(pods / per_node)
    hours = usage.run_s / 3600.0
    return PlatformCost(
        model="eks",
        title=title,
        basis="measured" if usage.platform == "pods" else "projected",
        sessions=usage.sessions,
        cold_starts=0,
        compute=(
            CostLine(
                item=f"{nodes} x {node_type} nodes ({pods} pods, {per_node:g} per node)",
                quantity=nodes * hours,
                unit="node-hours",
                price_key=f"node_hour_{node_type}",
                price=prices.price(f"node_hour_{node_type}"),
            ),
            CostLine(
                item="EKS cluster",
                quantity=hours,
                unit="cluster-hours",
                price_key="eks_cluster_hour",
                price=prices.price("eks_cluster_hour"),
            ),
        ),
        shared=shared,
        notes=(pods_note, "pods run for the whole run; they are started before the sale"),
    )


def _fargate(usage: Usage, prices: PriceTable, shared: tuple[CostLine, ...]) -> PlatformCost:
    title = "EKS pods on Fargate"
    pods, pods_note = _pods(usage, prices)
    if pods is None:
        return PlatformCost(model="fargate", title=title, basis="missing", missing=_NO_PODS)
    hours = usage.run_s / 3600.0
    vcpu, mem = prices.number("pod_vcpu"), prices.number("pod_memory_gb")
    return PlatformCost(
        model="fargate",
        title=title,
        basis="measured" if usage.platform == "pods" else "projected",
        sessions=usage.sessions,
        cold_starts=0,
        compute=(
            CostLine(
                item=f"{pods} pods x {vcpu:g} vCPU",
                quantity=pods * vcpu * hours,
                unit="vCPU-hours",
                price_key="fargate_vcpu_hour",
                price=prices.price("fargate_vcpu_hour"),
            ),
            CostLine(
                item=f"{pods} pods x {mem:g} GB",
                quantity=pods * mem * hours,
                unit="GB-hours",
                price_key="fargate_gb_hour",
                price=prices.price("fargate_gb_hour"),
            ),
            CostLine(
                item="EKS cluster",
                quantity=hours,
                unit="cluster-hours",
                price_key="eks_cluster_hour",
                price=prices.price("eks_cluster_hour"),
            ),
        ),
        shared=shared,
        notes=(pods_note,),
    )


def _active_cpu(usage: Usage, prices: PriceTable, shared: tuple[CostLine, ...]) -> PlatformCost:
    fraction = prices.number("active_cpu_fraction")
    vcpu, mem = prices.number("pod_vcpu"), prices.number("active_memory_gb")
    busy_h = usage.compute_s / 3600.0
    return PlatformCost(
        model="active_cpu",
        title="active-CPU billing (AgentCore-style)",
        basis="projected",
        sessions=usage.sessions,
        cold_starts=None,
        compute=(
            CostLine(
                item=f"CPU while busy ({fraction:.1%} of {usage.compute_s:,.1f} s)",
                quantity=busy_h * fraction * vcpu,
                unit="vCPU-hours",
                price_key="active_cpu_vcpu_hour",
                price=prices.price("active_cpu_vcpu_hour"),
            ),
            CostLine(
                item=f"memory held ({mem:g} GB)",
                quantity=busy_h * mem,
                unit="GB-hours",
                price_key="active_cpu_gb_hour",
                price=prices.price("active_cpu_gb_hour"),
            ),
        ),
        shared=shared,
        notes=(
            "active_cpu_fraction is an assumption (the run does not measure CPU time); "
            "waiting on the LLM is not billed",
        ),
    )


def _break_even(usage: Usage, platforms: tuple[PlatformCost, ...]) -> tuple[float | None, str]:
    by = {p.model: p for p in platforms}
    lam, eks = by["lambda"], by["eks"]
    lam_usd, eks_usd = lam.compute_usd, eks.compute_usd
    if lam_usd is None or eks_usd is None:
        reason = lam.missing or eks.missing
        return None, f"not computed: needs {reason}"
    if not usage.invocations or usage.run_s <= 0 or lam_usd <= 0:
        return None, "not computed: the run billed no Lambda time"
    per_request = lam_usd / usage.invocations
    per_day = eks_usd / usage.run_s * 86_400.0
    value = per_day / per_request
    return value, (
        f"Lambda on-demand at ${per_request * 1e6:,.2f} per million requests (cold starts "
        f"{lam.basis}) against the pods fleet at ${per_day:,.2f} a day: below this many "
        "requests a day Lambda is cheaper"
    )


def break_even_between(
    lambda_run: CostEstimate, pods_run: CostEstimate
) -> tuple[float | None, str]:
    """Requests/day below which Lambda (as ``lambda_run`` measured it) is cheaper than the
    pods fleet ``pods_run`` measured, each priced on its own platform."""
    lam, eks = lambda_run.model("lambda"), pods_run.model("eks")
    lam_usd, eks_usd = lam.compute_usd, eks.compute_usd
    if lam_usd is None or eks_usd is None:
        return None, f"not computed: needs {lam.missing or eks.missing}"
    invocations, run_s = lambda_run.usage.invocations, pods_run.usage.run_s
    if not invocations or run_s <= 0 or lam_usd <= 0:
        return None, "not computed: the Lambda run billed no time"
    per_request = lam_usd / invocations
    per_day = eks_usd / run_s * 86_400.0
    return per_day / per_request, (
        f"Lambda on-demand at ${per_request * 1e6:,.2f} per million requests (the Lambda "
        f"run, cold starts as measured) against {pods_run.usage.pods} pods at "
        f"${per_day:,.2f} a day (the pods run): below this many requests a day Lambda is "
        "cheaper"
    )


def _usage_notes(usage: Usage) -> tuple[str, ...]:
    notes = [f"duration: {usage.compute_source}"]
    if usage.cold_starts:
        source = "not named by the run" if usage.init_source == "none" else usage.init_source
        notes.append(f"INIT figures from: {source}")
    if usage.prewarmed:
        notes.append(f"{usage.prewarmed} environments were warm before their first invocation")
    return tuple(notes)


def dumps(estimate: CostEstimate) -> str:
    """The estimate as indented JSON (NaN as null)."""
    return json.dumps(estimate.to_json(), indent=2, default=str, allow_nan=False)
