"""Stop conditions: revert every fault loadlab leased, now (an abort gate broke).

When a live gate marked ``abort: true`` breaks, the harness stops the load and
calls :func:`revert_active_faults`: every fault that changes a real system and
is recorded as a lease is reverted at once, whatever its expiry says (DESIGN.md,
"Faults are leases"):

* LLM faults (429 storm, quota cut, slowdown) on the simulator's admin API
  (``$LOADLAB_LLM_URL``);
* DynamoDB capacity cuts on the capacity gate (``$LOADLAB_DDB_GATE_URL``);
* Lambda leases (throttle, kill orders, configuration nonce) in SSM, through
  the usual AWS settings, when ``$LOADLAB_LAMBDA_FUNCTION`` names the function.

A deleted pod is not a lease: the ReplicaSet (or the embedded fleet) replaces
it by itself. Each revert is reported; one that fails does not stop the others.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from chaoslib.exceptions import ActivityFailed

from loadlab.errors import LoadLabError

__all__ = ["FaultReverted", "revert_active_faults"]

Outcome = Literal["reverted", "none active", "failed"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultReverted:
    """What reverting one kind of fault did."""

    target: str
    outcome: Outcome
    detail: str


def revert_active_faults(environ: Mapping[str, str] | None = None) -> list[FaultReverted]:
    """Revert every active fault lease the environment points at; one result per target."""
    env = os.environ if environ is None else environ
    steps: list[tuple[str, Callable[[], tuple[Outcome, str]]]] = []
    if env.get("LOADLAB_LLM_URL"):
        steps.append(("llm", lambda: _llm(env["LOADLAB_LLM_URL"])))
    if env.get("LOADLAB_DDB_GATE_URL"):
        steps.append(("dynamodb", lambda: _dynamodb(env["LOADLAB_DDB_GATE_URL"])))
    if env.get("LOADLAB_LAMBDA_FUNCTION"):
        steps.append(("lambda", _lambda_leases))
    results = []
    for target, step in steps:
        try:
            outcome, detail = step()
        except (ActivityFailed, LoadLabError, OSError) as exc:
            outcome, detail = "failed", str(exc).splitlines()[0]
        results.append(FaultReverted(target=target, outcome=outcome, detail=detail))
    return results


def _llm(url: str) -> tuple[Outcome, str]:
    from loadlab.chaos.downstream.actions import llm_faults_clear
    from loadlab.chaos.downstream.probes import llm_fault_active

    if not llm_fault_active(url):
        return "none active", "no LLM fault in force"
    was = llm_faults_clear(url)
    return "reverted", f"LLM faults cleared (now active: {was['active']})"


def _dynamodb(url: str) -> tuple[Outcome, str]:
    from loadlab.chaos.downstream.actions import dynamodb_capacity_restore
    from loadlab.chaos.downstream.probes import dynamodb_capacity_cut_active

    if not dynamodb_capacity_cut_active(url):
        return "none active", "no DynamoDB capacity cut in force"
    was = dynamodb_capacity_restore(url)
    return "reverted", f"DynamoDB capacity restored (cut active: {was['active']})"


def _lambda_leases() -> tuple[Outcome, str]:
    from botocore.exceptions import BotoCoreError, ClientError

    from loadlab.chaos.aws_lambda.aws_clients import Clients, aws_client_factory
    from loadlab.chaos.aws_lambda.leases import revert_due_leases

    try:
        # every lease is "due" at an infinite now: all of them are reverted
        done = revert_due_leases(Clients(aws_client_factory()), now=math.inf, orphans=False)
    except (BotoCoreError, ClientError) as exc:
        return "failed", f"Lambda leases not reverted: {exc}"
    if not done:
        return "none active", "no Lambda lease in force"
    failed = [r for r in done if r.outcome == "failed"]
    lines = "; ".join(str(r) for r in done)
    return ("failed" if failed else "reverted"), lines
