"""Lambda's bills: on-demand (INIT billed) and provisioned concurrency, and the published
arithmetic as plain functions (:func:`lambda_cost_per_million`, :func:`provisioned_monthly`)."""

from __future__ import annotations

from typing import Literal

from loadlab.analysis.cost.model import HOURS_PER_MONTH, CostLine, PlatformCost, Usage
from loadlab.analysis.prices import PriceTable

__all__ = [
    "NO_MEMORY",
    "init_missing",
    "lambda_cold",
    "lambda_cost_per_million",
    "lambda_on_demand",
    "lambda_provisioned",
    "memory_gb",
    "provisioned_monthly",
    "requests_line",
]


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


def memory_gb(usage: Usage, prices: PriceTable) -> tuple[float | None, str]:
    assumed = prices.number("lambda_memory_mb")
    if assumed > 0:
        return assumed / 1024.0, f"{assumed:g} MB (--set / price table)"
    if usage.memory_mb:
        return usage.memory_mb / 1024.0, f"{usage.memory_mb:g} MB ({usage.memory_source})"
    return None, ""


NO_MEMORY = (
    "the function's memory size: the run recorded none (no REPORT line, no "
    "configuration in the manifest); pass --set lambda_memory_mb=MB"
)


def lambda_cold(usage: Usage) -> tuple[int, float | None, str]:
    """Cold starts an on-demand Lambda would have for this run, and the INIT of each (s)."""
    if usage.snapstart:
        # Its cold starts were restores: their time says nothing of an INIT.
        return usage.cold_starts, None, "measured (restored from a snapshot)"
    if usage.platform == "lambda":
        # Environments provisioned before the run would have cold-started on demand.
        extra = usage.prewarmed if usage.provisioned else 0
        note = f"measured, plus the {extra} provisioned ones" if extra else "measured"
        return usage.cold_starts + extra, usage.mean_init_s, note
    # Each request in flight at the peak needs an environment of its own.
    return usage.peak_concurrency, usage.mean_init_s, "projected: one per request at peak"


def lambda_on_demand(
    usage: Usage, prices: PriceTable, shared: tuple[CostLine, ...]
) -> PlatformCost:
    title = "Lambda on-demand"
    basis: Literal["measured", "projected"] = (
        "measured" if usage.platform == "lambda" else "projected"
    )
    gb, memory_note = memory_gb(usage, prices)
    if gb is None:
        return PlatformCost(model="lambda", title=title, basis="missing", missing=NO_MEMORY)
    cold, init_each, cold_note = lambda_cold(usage)
    if cold and init_each is None:
        return PlatformCost(
            model="lambda",
            title=title,
            basis="missing",
            missing=init_missing(usage),
        )
    init_s = cold * (init_each or 0.0)
    return PlatformCost(
        model="lambda",
        title=title,
        basis=basis,
        sessions=usage.sessions,
        cold_starts=cold,
        compute=(
            requests_line(usage, prices),
            CostLine.at(
                prices,
                "lambda_gb_second",
                item="duration",
                quantity=usage.compute_s * gb,
                unit="GB-s",
            ),
            CostLine.at(
                prices,
                "lambda_gb_second",
                item=f"INIT of {cold} cold starts",
                quantity=init_s * gb,
                unit="GB-s",
            ),
        ),
        shared=shared,
        notes=(f"memory {memory_note}", f"cold starts {cold_note}"),
    )


def requests_line(usage: Usage, prices: PriceTable) -> CostLine:
    return CostLine.at(
        prices,
        "lambda_request",
        item="requests",
        quantity=float(usage.invocations),
        unit="invocations",
    )


def lambda_provisioned(
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
    gb, memory_note = memory_gb(usage, prices)
    if gb is None:
        return PlatformCost(model="lambda_pc", title=title, basis="missing", missing=NO_MEMORY)
    on_demand_cold, init_each, _ = lambda_cold(usage)
    created = usage.environments if usage.platform == "lambda" else 0
    environments = max(on_demand_cold, created, 1)
    cold = max(environments - n, 0)
    if cold and init_each is None:
        return PlatformCost(
            model="lambda_pc",
            title=title,
            basis="missing",
            missing=init_missing(usage),
        )
    share = min(n, environments) / environments
    return PlatformCost(
        model="lambda_pc",
        title=title,
        basis="measured" if measured else "projected",
        sessions=usage.sessions,
        cold_starts=cold,
        compute=(
            requests_line(usage, prices),
            CostLine.at(
                prices,
                "lambda_pc_gb_second",
                item=f"{n} environments provisioned for the run ({usage.run_s:.0f} s)",
                quantity=n * gb * usage.run_s,
                unit="GB-s",
            ),
            CostLine.at(
                prices,
                "lambda_pc_duration_gb_second",
                item=f"duration on provisioned environments ({share:.0%})",
                quantity=usage.compute_s * gb * share,
                unit="GB-s",
            ),
            CostLine.at(
                prices,
                "lambda_gb_second",
                item="duration on on-demand environments",
                quantity=usage.compute_s * gb * (1 - share),
                unit="GB-s",
            ),
            CostLine.at(
                prices,
                "lambda_gb_second",
                item=f"INIT of {cold} cold starts beyond N",
                quantity=cold * (init_each or 0.0) * gb,
                unit="GB-s",
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


def init_missing(usage: Usage) -> str:
    """Why the INIT of a cold start is unknown for this run."""
    if usage.snapstart:
        return (
            "the INIT time of an on-demand cold start: this run restored its environments "
            "from a snapshot (price a run of the same scenario without --snapstart)"
        )
    return "the INIT time of a cold start: the run recorded none (init_ms)"
