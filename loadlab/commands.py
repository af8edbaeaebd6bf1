"""The work behind ``loadlab run``, ``loadlab demo`` and ``loadlab up``.

This module is the composition root: it is the one place that wires the
embedded target (``loadlab.embedded``), the load run (a Locust process, see
:mod:`loadlab.orchestrate`) and the report together.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

from loadlab.embedded.stack import EmbeddedStack, serve_forever
from loadlab.errors import ConfigError, LoadLabError
from loadlab.measure.checkpoint_audit import AuditResult, audit_checkpoints
from loadlab.measure.checkpoint_fetch import dynamodb_client
from loadlab.measure.rundir import RunDirectory, new_run_dir
from loadlab.orchestrate import (
    RunPlan,
    check_target,
    read_stack_state,
    resolve_scenario_path,
    run_locust,
)
from loadlab.report.render import RenderedReport, headline, render_run
from loadlab.rows import TimelineEvent, append_lines, event_line
from loadlab.scenario.files import load_scenario
from loadlab.scenario.model import Scenario


@contextlib.asynccontextmanager
async def _embedded(
    args: argparse.Namespace, *, lambda_function: bool = False
) -> AsyncIterator[EmbeddedStack]:
    with_lambda = lambda_function or bool(getattr(args, "lambda_function", False))
    stack = EmbeddedStack(
        replicas=args.replicas,
        time_scale=args.stack_time_scale,
        state_dir=args.state_dir,
        lambda_function=with_lambda,
    )
    what = f"{args.replicas} agent pods" + (
        " and the agent as a Lambda function" if with_lambda else ""
    )
    print(f"loadlab: starting the embedded stack ({what}) ...", flush=True)
    started = time.monotonic()
    async with stack:
        print(f"loadlab: stack ready in {time.monotonic() - started:.1f}s", flush=True)
        yield stack


def embedded_pressure_env(stack_file: Path) -> dict[str, str]:
    """Locust's environment for sampling downstream pressure from the embedded stack.

    Prometheus: the LLM simulator's ``/metrics`` and the DynamoDB gate's
    ``loadlab_ddb_*``; CloudWatch: ministack (fed by the stack's publisher) at a
    1 s period, with the stack's AWS endpoint, keys and region. Empty when
    ``stack_file`` cannot be read.
    """
    try:
        data = json.loads(stack_file.read_text())
        endpoints, aws = data["endpoints"], data["aws"]
        scrape = [f"{endpoints['llm_url']}/metrics"]
        if endpoints.get("ddb_gate_url"):
            scrape.append(f"{endpoints['ddb_gate_url']}/metrics#loadlab_ddb_*")
        return {
            "LOADLAB_PRESSURE_PROMETHEUS": " ".join(scrape),
            "LOADLAB_PRESSURE_CLOUDWATCH": "1",
            # one CloudWatch period per publisher round (every 5 simulated seconds)
            "LOADLAB_PRESSURE_CLOUDWATCH_PERIOD": str(
                max(1, round(5 * float(data.get("time_scale", 1.0))))
            ),
            "AWS_ENDPOINT_URL": aws["endpoint_url"],
            "AWS_ACCESS_KEY_ID": aws["access_key_id"],
            "AWS_SECRET_ACCESS_KEY": aws["secret_access_key"],
            "AWS_REGION": aws["region"],
            "AWS_DEFAULT_REGION": aws["region"],
        }
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _scenario(name: str) -> tuple[Path, Scenario]:
    path = resolve_scenario_path(name)
    return path, load_scenario(path)


def _finish(run_dir: Path, locust_rc: int) -> RenderedReport:
    if not (run_dir / "manifest.json").exists():
        raise LoadLabError(
            f"Locust exited with code {locust_rc} before the run started; nothing was recorded",
            hint="read Locust's error above (a bad option or locustfile import error)",
        )
    print("loadlab: rendering the report ...", flush=True)
    out = render_run(run_dir)
    print(headline(out.summary))
    for gate in out.gates:
        print(f"  SLO {gate.message}")
    agreement = out.summary.get("locust")
    if agreement is not None:
        state = "agree" if agreement["all_match"] else "DIFFER (see report)"
        print(f"  loadlab and Locust statistics {state}")
    print(f"run directory: {run_dir}")
    print(f"report:        {out.html_path}")
    return out


async def audit_embedded(stack_file: Path, run_dir: Path, scenario: Scenario) -> None:
    """Check every session's checkpoint item in the embedded stack's DynamoDB (out of band).

    Runs while the stack is still up (its DynamoDB goes with it); the result lands in
    ``checkpoints.parquet`` and the report compares it with the in-band verdicts.
    """
    if not (run_dir / "sessions.parquet").exists() or scenario.target.protocol == "openai":
        return
    data = json.loads(stack_file.read_text())
    aws = data["aws"]
    print("loadlab: checking each session's checkpoint in DynamoDB (out of band) ...", flush=True)

    def audit() -> AuditResult:
        client = dynamodb_client(
            endpoint_url=aws["endpoint_url"],
            region=aws["region"],
            access_key_id=aws["access_key_id"],
            secret_access_key=aws["secret_access_key"],
        )
        try:
            return audit_checkpoints(
                run_dir, client=client, table=data["endpoints"]["table"], scenario=scenario
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


async def run_command(args: argparse.Namespace) -> int:
    """``loadlab run``: one scenario against an agent, then the report."""
    path, scenario = _scenario(args.scenario)
    on_lambda = scenario.target.protocol == "lambda" or args.lambda_function
    if args.embedded:
        async with _embedded(args, lambda_function=on_lambda) as stack:
            run_dir = args.run_dir or new_run_dir(args.runs_root, scenario.name)
            info = read_stack_state(stack.stack_file)
            assert info is not None
            plan = RunPlan(
                scenario_path=path,
                # against the Lambda target the load speaks to the Lambda API (ministack)
                target_url=stack.endpoints.aws_endpoint_url if on_lambda else info.agent_url,
                run_dir=run_dir,
                users=args.users,
                time_scale=args.time_scale,
                web=args.web,
                web_port=args.web_port,
                jwt_secret=info.jwt_secret,
                env=embedded_pressure_env(stack.stack_file)
                | (
                    {"LOADLAB_TARGET_LAMBDA_FUNCTION": stack.endpoints.lambda_function}
                    if on_lambda and stack.endpoints.lambda_function
                    else {}
                ),
            )
            rc = await run_locust(plan)
            await audit_embedded(stack.stack_file, run_dir, scenario)
    else:
        target, secret = _target(args.target, scenario, args.state_dir / "stack.json")
        check_target(target, scenario.target.protocol)
        run_dir = args.run_dir or new_run_dir(args.runs_root, scenario.name)
        stack_file = args.state_dir / "stack.json"
        running = read_stack_state(stack_file)
        plan = RunPlan(
            scenario_path=path,
            target_url=target,
            run_dir=run_dir,
            users=args.users,
            time_scale=args.time_scale,
            web=args.web,
            web_port=args.web_port,
            jwt_secret=secret,
            # Against the stack of `loadlab up`, its downstream is sampled as with --embedded.
            env=embedded_pressure_env(stack_file)
            if running is not None and running.agent_url == target
            else {},
        )
        rc = await run_locust(plan)
    out = _finish(run_dir, rc)
    if rc not in (0, 1):  # Locust exits 1 when any request failed: that is data, not a crash
        return rc
    return 0 if out.slo_passed else 6


def _target(flag: str | None, scenario: Scenario, stack_file: Path) -> tuple[str, str | None]:
    secret = os.environ.get("LOADLAB_JWT_SECRET")
    info = read_stack_state(stack_file)
    target = flag or scenario.target.url
    if target:
        # A URL of the running embedded stack (its pods or its Lambda function URL)
        # signs with that stack's secret unless LOADLAB_JWT_SECRET says otherwise.
        if secret is None and info is not None and _same_origin(target, stack_file):
            secret = info.jwt_secret
        return target, secret
    if info is not None:
        return info.agent_url, secret or info.jwt_secret
    raise ConfigError(
        "no target: the scenario has no target.url and no embedded stack is running",
        hint="pass --target URL, add --embedded, or start `loadlab up` in another terminal",
    )


def _same_origin(url: str, stack_file: Path) -> bool:
    """True when ``url`` points at one of the embedded stack's servers."""
    try:
        data = json.loads(stack_file.read_text())
    except (OSError, ValueError):
        return False
    origins = {_origin(v) for v in (data.get("endpoints") or {}).values() if isinstance(v, str)}
    return _origin(url) in origins - {""}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.hostname and parts.port else ""


async def demo_command(args: argparse.Namespace) -> int:
    """``loadlab demo``: embedded stack, a short flash sale, one pod deleted mid-sale, report."""
    path, scenario = _scenario(args.scenario)
    if args.users:
        scenario = scenario.with_overrides(users=args.users)
    if not 0 <= args.kill_at < 1:
        raise ConfigError(
            f"--kill-at {args.kill_at} is outside [0, 1)",
            hint="give a fraction of the run, e.g. --kill-at 0.5, or 0 for no kill",
        )
    run_dir = new_run_dir(args.runs_root, scenario.name)
    duration = scenario.shape.duration_s * scenario.time_scale
    async with _embedded(args) as stack:
        info = read_stack_state(stack.stack_file)
        assert info is not None
        plan = RunPlan(
            scenario_path=path,
            target_url=info.agent_url,
            run_dir=run_dir,
            users=args.users,
            jwt_secret=info.jwt_secret,
            env=embedded_pressure_env(stack.stack_file),
        )
        print(
            f"loadlab: flash sale '{scenario.name}' for ~{duration:.0f}s, "
            f"peak {scenario.shape.peak} sessions -> {run_dir}",
            flush=True,
        )

        async def kill_one_pod() -> None:
            await asyncio.sleep(duration * args.kill_at)
            await delete_pod_mid_sale(stack, RunDirectory(run_dir))

        rc = await run_locust(plan, during=kill_one_pod if args.kill_at > 0 else None)
        await audit_embedded(stack.stack_file, run_dir, scenario)
    _finish(run_dir, rc)
    return 0 if rc in (0, 1) else rc


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


async def up_command(args: argparse.Namespace) -> int:
    """``loadlab up``: the embedded stack in the foreground until Ctrl-C."""
    stack = EmbeddedStack(
        replicas=args.replicas,
        time_scale=args.stack_time_scale,
        state_dir=args.state_dir,
        lambda_function=args.lambda_function,
    )
    await serve_forever(stack)
    return 0
