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
* ``lambda_snapstart`` — Lambda with SnapStart: requests + duration, and per
  restored environment its restore time, the GB restored and the snapshot's
  cache (only a run made with SnapStart measures it);
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

from loadlab.analysis.cost.aws_lambda import lambda_cost_per_million, provisioned_monthly
from loadlab.analysis.cost.estimate import break_even_between, cost_estimate, dumps, own_model
from loadlab.analysis.cost.model import (
    HOURS_PER_MONTH,
    PLATFORMS,
    CostEstimate,
    CostLine,
    Platform,
    PlatformCost,
    Usage,
)
from loadlab.analysis.cost.snapstart import snapstart_charges
from loadlab.analysis.cost.usage import measured_usage, platform_of

__all__ = [
    "HOURS_PER_MONTH",
    "PLATFORMS",
    "CostEstimate",
    "CostLine",
    "Platform",
    "PlatformCost",
    "Usage",
    "break_even_between",
    "cost_estimate",
    "dumps",
    "lambda_cost_per_million",
    "measured_usage",
    "own_model",
    "platform_of",
    "provisioned_monthly",
    "snapstart_charges",
]
