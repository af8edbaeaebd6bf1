"""The embedded stack for a command: started for it, handed to the load, audited after.

Everything a load run needs from the stack reaches the Locust process (or
``chaos run``) through its environment, built here from the stack's
:class:`~loadlab.embedded.state.StackState`; nothing below the wiring reads
``stack.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from loadlab.app.options import StackOptions
from loadlab.embedded.aws_lambda.deploy import LambdaOptions
from loadlab.embedded.stack import EmbeddedStack
from loadlab.embedded.state import LocalAWS, StackState
from loadlab.errors import LoadLabError
from loadlab.measure.checkpoint_audit import AuditResult, audit_checkpoints
from loadlab.measure.checkpoint_fetch import dynamodb_client
from loadlab.measure.rundir import RunDirectory
from loadlab.rows import TimelineEvent, append_lines, event_line
from loadlab.scenario.model import Scenario


@contextlib.asynccontextmanager
async def embedded_stack(
    options: StackOptions, *, lambda_function: bool = False
) -> AsyncIterator[EmbeddedStack]:
    """Start the embedded stack for one command and stop it afterwards, printing progress."""
    with_lambda = (
        lambda_function
        or options.lambda_function
        or options.provisioned_concurrency > 0
        or options.snapstart
        or options.agent_init != "module"
    )
    stack = EmbeddedStack(
        replicas=options.replicas,
        time_scale=options.time_scale,
        state_dir=options.state_dir,
        lambda_function=with_lambda,
        lambda_options=LambdaOptions(
            provisioned_concurrency=options.provisioned_concurrency,
            snapstart=options.snapstart,
            agent_init=options.agent_init,
        ),
        agent_mode=options.agent_mode,
    )
    what = f"{options.replicas} agent pods" + (
        " and the agent as a Lambda function" if with_lambda else ""
    )
    print(f"loadlab: starting the embedded stack ({what}) ...", flush=True)
    started = time.monotonic()
    async with stack:
        print(f"loadlab: stack ready in {time.monotonic() - started:.1f}s", flush=True)
        yield stack


def pressure_env(state: StackState) -> dict[str, str]:
    """The Locust process's environment for sampling downstream pressure from the stack.

    Prometheus: the LLM simulator's ``/metrics`` and the DynamoDB gate's
    ``loadlab_ddb_*``; CloudWatch: ministack (fed by the stack's publisher) at one
    period per publisher round (5 simulated seconds), with the stack's AWS
    endpoint, keys and region; the LLM simulator's and the DynamoDB gate's admin
    URLs and the stack's admin token, so that a broken abort gate reverts their
    faults; the stack's kubeconfig (the pods API with the token) for
    chaostoolkit-kubernetes.
    """
    endpoints = state.endpoints
    scrape = [f"{endpoints.llm_url}/metrics"]
    if endpoints.ddb_gate_url:
        scrape.append(f"{endpoints.ddb_gate_url}/metrics#loadlab_ddb_*")
    return {
        # where an abort gate's breach reverts faults (loadlab.chaos.stop)
        "LOADLAB_LLM_URL": endpoints.llm_url,
        "LOADLAB_DDB_GATE_URL": endpoints.ddb_gate_url or "",
        "LOADLAB_ADMIN_TOKEN": state.admin_token,
        **({"KUBECONFIG": state.kubeconfig} if state.kubeconfig else {}),
        "LOADLAB_PRESSURE_PROMETHEUS": " ".join(scrape),
        "LOADLAB_PRESSURE_CLOUDWATCH": "1",
        "LOADLAB_PRESSURE_CLOUDWATCH_PERIOD": str(max(1, round(5 * state.time_scale))),
        **state.aws.env(),
    }


async def audit_embedded(state: StackState, run_dir: Path, scenario: Scenario) -> None:
    """Check every session's checkpoint item in the embedded stack's DynamoDB (out of band).

    Runs while the stack is still up (its DynamoDB goes with it); the result lands in
    ``checkpoints.parquet`` and the report compares it with the in-band verdicts.
    """
    if not (run_dir / "sessions.parquet").exists() or scenario.target.protocol == "openai":
        return
    aws: LocalAWS = state.aws
    print("loadlab: checking each session's checkpoint in DynamoDB (out of band) ...", flush=True)

    def audit() -> AuditResult:
        client = dynamodb_client(
            endpoint_url=aws.endpoint_url,
            region=aws.region,
            access_key_id=aws.access_key_id,
            secret_access_key=aws.secret_access_key,
        )
        try:
            return audit_checkpoints(
                run_dir, client=client, table=state.endpoints.table, scenario=scenario
            )
        finally:
            client.close()

    try:
        result = await asyncio.to_thread(audit)
    except LoadLabError as exc:
        print(f"loadlab: checkpoint audit skipped: {exc.message}", file=sys.stderr)
        return
    print(
        f"loadlab: checkpoints of {result.sessions} sessions: {result.agreed} agree with the "
        f"in-band verdict, {len(result.disagreed)} differ",
        flush=True,
    )


async def delete_pod_mid_sale(stack: EmbeddedStack, run_dir: RunDirectory) -> None:
    """Delete one ready agent pod at once (grace 0) and put the fault on the run timeline."""
    ready = stack.fleet.ready_pods()
    if not ready:
        print("loadlab: no ready pod to delete; skipping the fault", file=sys.stderr)
        return
    victim = ready[0]
    fault_id = uuid.uuid4().hex[:12]

    def fault_event(phase: str, status: str | None) -> str:
        return event_line(
            TimelineEvent(
                t=time.time(),
                kind="fault",
                name="delete pod (grace 0)",
                target=victim.name,
                attrs={
                    "fault_id": fault_id,
                    "phase": phase,
                    "status": status,
                    "activity": "loadlab demo",
                    "instance_id": victim.instance_id,
                },
            )
        )

    append_lines(run_dir.events, [fault_event("start", None)])
    try:
        await stack.fleet.delete_pod(victim.name, grace_period_seconds=0)
    except LoadLabError:
        append_lines(run_dir.events, [fault_event("end", "failed")])
        raise
    append_lines(run_dir.events, [fault_event("end", "succeeded")])
    print(f"loadlab: deleted pod {victim.name} mid-sale", flush=True)
