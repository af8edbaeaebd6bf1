"""A run priced on every platform (:func:`cost_estimate`) and the Lambda/pods break-even."""

from __future__ import annotations

import json

from loadlab.analysis.cost.aws_lambda import lambda_on_demand, lambda_provisioned
from loadlab.analysis.cost.model import CostEstimate, CostLine, PlatformCost, Usage
from loadlab.analysis.cost.pods import active_cpu, eks, fargate
from loadlab.analysis.cost.snapstart import lambda_snapstart
from loadlab.analysis.cost.usage import measured_usage
from loadlab.analysis.prices import PriceTable
from loadlab.analysis.rundata import RunData
from loadlab.errors import RunDirectoryError

__all__ = ["break_even_between", "cost_estimate", "dumps", "own_model"]


def own_model(usage: Usage) -> str:
    """The model that prices the run as it ran: ``lambda``, ``lambda_snapstart`` or ``eks``."""
    if usage.platform == "pods":
        return "eks"
    return "lambda_snapstart" if usage.snapstart else "lambda"


def cost_estimate(run: RunData, prices: PriceTable, *, platform: str | None = None) -> CostEstimate:
    """Price ``run``'s usage on every platform (see the module doc)."""
    usage = measured_usage(run, platform=platform)
    shared = _shared_lines(usage, prices)
    platforms = (
        lambda_on_demand(usage, prices, shared),
        lambda_provisioned(usage, prices, shared),
        lambda_snapstart(usage, prices, shared),
        eks(usage, prices, shared),
        fargate(usage, prices, shared),
        active_cpu(usage, prices, shared),
    )
    own = own_model(usage)
    for model in platforms:
        if model.model == own and model.missing:
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
        CostLine.at(
            prices,
            "dynamodb_read_request_unit",
            item="DynamoDB reads (on-demand)",
            quantity=usage.ddb_rcu,
            unit="read request units",
        ),
        CostLine.at(
            prices,
            "dynamodb_write_request_unit",
            item="DynamoDB writes (on-demand)",
            quantity=usage.ddb_wcu,
            unit="write request units",
        ),
        CostLine.at(
            prices,
            "llm_input_token",
            item="LLM input tokens",
            quantity=usage.tokens_in,
            unit="tokens",
        ),
        CostLine.at(
            prices,
            "llm_output_token",
            item="LLM output tokens",
            quantity=usage.tokens_out,
            unit="tokens",
        ),
    )


def _break_even(usage: Usage, platforms: tuple[PlatformCost, ...]) -> tuple[float | None, str]:
    by = {p.model: p for p in platforms}
    lam, eks = by[own_model(usage) if usage.platform == "lambda" else "lambda"], by["eks"]
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
    lam, eks = lambda_run.model(own_model(lambda_run.usage)), pods_run.model("eks")
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
