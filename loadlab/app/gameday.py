"""``loadlab gameday``: a Chaos Toolkit experiment with loadlab's load, timeline and report.

Without ``--target``, the embedded stack is started and the experiment reaches
it through the same APIs it would use in the cloud: the agent over HTTP
(``LOADLAB_TARGET_URL``), the pods through the Kubernetes API
(``KUBERNETES_HOST``; ``KUBECONFIG`` pointed at a file that does not exist,
because chaostoolkit-kubernetes prefers a kubeconfig when one exists).
``chaos run`` writes its journal into the run directory beside loadlab's files;
its ``start_load`` action starts the load (:mod:`loadlab.chaos.loadrun`).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from loadlab.app.children import wait_interruptibly
from loadlab.app.closing import check_verdict, print_report
from loadlab.app.embedded import audit_embedded, embedded_stack, pressure_env
from loadlab.app.options import ChaosRunOptions, GamedayOptions
from loadlab.app.scenarios import resolve_experiment_path, resolve_scenario_path
from loadlab.app.targets import check_target
from loadlab.embedded.state import LocalAWS, StackState
from loadlab.errors import ChildFailed, ConfigError, HypothesisDeviated
from loadlab.load.context import lambda_function_of
from loadlab.measure.rundir import new_run_dir
from loadlab.orphans import die_with_parent
from loadlab.report.render import render_run
from loadlab.scenario.files import load_scenario
from loadlab.scenario.model import Scenario

JOURNAL = "journal.json"
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*(:(int|float|bytes))?=.*", re.S)
CHAOS_GRACE_S = 60.0


def execute(options: GamedayOptions) -> int:
    """Run the experiment and render one report; 0, or raise (a deviation is exit 6)."""
    return asyncio.run(_gameday(options))


def load_experiment(path: Path) -> dict[str, Any]:
    """Read an experiment file, with errors that name the problem and the fix."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"experiment file {str(path)!r} not found",
            hint="pass a Chaos Toolkit experiment file, e.g. chaos/pod-kill-mid-session.json",
        ) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"experiment {path} is not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}",
            hint="fix the JSON (e.g. a trailing comma or a missing quote) and run again",
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"experiment {path} must be a JSON object, not {type(data).__name__}")
    missing = [key for key in ("title", "description", "method") if key not in data]
    if missing:
        raise ConfigError(
            f"experiment {path} lacks {', '.join(repr(k) for k in missing)}",
            hint="a Chaos Toolkit experiment needs a title, a description and a method "
            "(see chaos/pod-kill-mid-session.json)",
        )
    if not isinstance(data["method"], list) or not data["method"]:
        raise ConfigError(
            f"experiment {path}: 'method' must be a non-empty list of activities",
            hint="add at least one action or probe to the method",
        )
    return data


def check_chaos_options(chaos: ChaosRunOptions) -> None:
    """Refuse a malformed ``--var`` or a missing ``--var-file`` before anything starts."""
    for variable in chaos.variables:
        if not _VARIABLE.fullmatch(variable):
            raise ConfigError(
                f"--var {variable!r} is not KEY=VALUE",
                hint="write --var key=value, or --var key:int=3 (types: int, float, bytes)",
            )
    for path in chaos.var_files:
        if not path.is_file():
            raise ConfigError(
                f"--var-file {str(path)!r} is not a file",
                hint="pass a JSON/YAML file of configuration values, or a .env file",
            )


def experiment_scenario(experiment: dict[str, Any]) -> str | None:
    """The default of the experiment's ``scenario`` configuration entry, if it has one."""
    entry = (experiment.get("configuration") or {}).get("scenario")
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict) and isinstance(entry.get("default"), str):
        return str(entry["default"])
    return None


def capacity_warning(scenario: Scenario, state: StackState | None) -> str | None:
    """A warning when the scenario's peak exceeds the Lambda function's known concurrency."""
    function = state.lambda_function if state is not None else None
    limit = function.reserved_concurrency if function is not None else None
    peak = scenario.shape.peak
    if limit is None or peak <= limit:
        return None
    return (
        f"loadlab: warning: scenario '{scenario.name}' peaks at {peak} sessions, but the "
        f"Lambda function has {limit} concurrent environments (reserved concurrency): "
        f"about {peak - limit} sessions at a time will be throttled, whatever the fault. "
        "Use a scenario sized to the function (e.g. scenarios/lambda_sale.yaml)."
    )


async def _gameday(options: GamedayOptions) -> int:
    experiment_path = resolve_experiment_path(options.experiment).resolve()
    experiment = load_experiment(experiment_path)
    check_chaos_options(options.chaos)
    chosen = (
        options.chaos.variable("scenario")
        or options.scenario
        or experiment_scenario(experiment)
        or "demo.yaml"
    )
    scenario_path = resolve_scenario_path(chosen).resolve()
    scenario = load_scenario(scenario_path)
    run_dir = (options.run_dir or new_run_dir(options.runs_root, experiment_path.stem)).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    env = _clean_env() | {
        "LOADLAB_RUN_DIR": str(run_dir),
        "LOADLAB_SCENARIO": str(scenario_path),
    }
    print(f"loadlab: game day '{experiment_path.name}' -> {run_dir}", flush=True)
    if options.target:
        check_target(options.target, scenario.target.protocol)
        env["LOADLAB_TARGET_URL"] = options.target
        if "loadlab.chaos.aws_lambda" in experiment_path.read_text():
            # A harness that crashed mid-experiment may have left a function throttled
            # or a kill order in place: revert what it leased before starting anew.
            _revert_orphans(None)
        rc = await run_chaos(experiment_path, run_dir, env, options.chaos)
    else:
        on_lambda = options.stack.lambda_function or lambda_function_of(scenario) is not None
        async with embedded_stack(options.stack, lambda_function=on_lambda) as stack:
            state = stack.state
            endpoints = state.endpoints
            env |= {
                "LOADLAB_TARGET_URL": endpoints.agent_url,
                "LOADLAB_JWT_SECRET": state.jwt_secret,
                "KUBERNETES_HOST": endpoints.fleet_url,
                "KUBECONFIG": str(run_dir / ".kubeconfig-unused"),
                # For loadlab.chaos.downstream: the LLM simulator's and the gate's admin APIs.
                "LOADLAB_LLM_URL": endpoints.llm_url,
                "LOADLAB_DDB_GATE_URL": endpoints.ddb_gate_url or "",
            }
            if endpoints.lambda_function:
                # the function the Lambda experiments act on, and the one the load invokes
                env["LOADLAB_LAMBDA_FUNCTION"] = endpoints.lambda_function
                env["LOADLAB_TARGET_LAMBDA_FUNCTION"] = endpoints.lambda_function
                env["LOADLAB_TARGET_URL"] = endpoints.aws_endpoint_url
                _revert_orphans(state.aws)
            # The load samples the stack's downstream; AWS calls go to its ministack only.
            env = {k: v for k, v in env.items() if not k.startswith("AWS_")} | pressure_env(state)
            warning = capacity_warning(scenario, state) if on_lambda else None
            if warning:
                print(warning, file=sys.stderr, flush=True)
            rc = await run_chaos(experiment_path, run_dir, env, options.chaos)
            if (run_dir / "manifest.json").exists():
                await audit_embedded(state, run_dir, scenario)
    return _finish(run_dir, rc)


def _revert_orphans(aws: LocalAWS | None) -> None:
    """Revert the Lambda faults a crashed loadlab left behind (their leases say how)."""
    from loadlab.chaos.aws_lambda.aws_clients import aws_client_factory
    from loadlab.chaos.aws_lambda.leases import revert_orphaned_leases

    factory = (
        aws_client_factory(
            endpoint_url=aws.endpoint_url,
            region=aws.region,
            access_key_id=aws.access_key_id,
            secret_access_key=aws.secret_access_key,
        )
        if aws is not None
        else None
    )
    for line in revert_orphaned_leases(factory):
        print(f"loadlab: {line}", flush=True)


def _clean_env() -> dict[str, str]:
    env = dict(os.environ)
    for key in ("LOADLAB_RUN_DIR", "LOADLAB_TARGET_URL"):
        env.pop(key, None)
    return env


async def run_chaos(
    experiment: Path, run_dir: Path, env: dict[str, str], chaos: ChaosRunOptions
) -> int:
    """Run ``chaos run`` on ``experiment``; its journal and log go into ``run_dir``.

    Rollbacks run on every ending unless ``--rollback-strategy`` says otherwise,
    and Ctrl-C is passed on so Chaos Toolkit can run them.
    """
    executable = Path(sys.executable).with_name("chaos")
    cmd = [
        str(executable) if executable.exists() else "chaos",
        "--no-version-check",
        "--log-file", str(run_dir / "chaostoolkit.log"),
        "run",
        "--journal-path", str(run_dir / JOURNAL),
        *chaos.argv(),
        str(experiment),
    ]  # fmt: skip
    # dies with loadlab, and its Locust with it (no load left running by a killed harness)
    proc = await asyncio.create_subprocess_exec(*cmd, env=env, preexec_fn=die_with_parent())
    return await wait_interruptibly(proc, grace_s=CHAOS_GRACE_S)


def _finish(run_dir: Path, chaos_rc: int) -> int:
    journal = _journal_outcome(run_dir / JOURNAL)
    out = None
    if (run_dir / "manifest.json").exists():
        out = render_run(run_dir)
        print_report(out)
    else:
        print(
            "loadlab: the experiment ended before any load was recorded; "
            f"see {run_dir / 'chaostoolkit.log'}",
            file=sys.stderr,
        )
    print(f"experiment:    {journal['status']}, hypothesis {journal['hypothesis']}")
    print(f"journal:       {run_dir / JOURNAL}")
    print(f"run directory: {run_dir}")
    if journal["status"] != "completed" and not journal["deviated"]:
        # The experiment itself broke (an activity failed, Ctrl-C): not a verdict on the agent.
        raise ChildFailed(
            f"the experiment did not complete ({journal['status']})",
            exit_code=chaos_rc or 1,
            hint=f"see {run_dir / 'chaostoolkit.log'}",
        )
    if out is not None:
        check_verdict(out)
    elif journal["deviated"]:
        raise HypothesisDeviated(
            f"the experiment deviated: hypothesis {journal['hypothesis']}",
            hint=f"see the journal {run_dir / JOURNAL}",
        )
    return 0


def _journal_outcome(path: Path) -> dict[str, Any]:
    """Status, deviation and a one-line account of the hypothesis from a journal."""
    try:
        journal = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {"status": "no journal", "deviated": False, "hypothesis": "unknown"}
    states = journal.get("steady_states") or {}
    lines: list[str] = []
    verdict = "not checked"
    for when in ("before", "after"):
        state = states.get(when) or {}
        if "steady_state_met" not in state:
            continue
        if state["steady_state_met"]:
            verdict = "met"
            continue
        verdict = f"NOT met {when} the method"
        for probe in state.get("probes") or []:
            if probe.get("tolerance_met", True):
                continue
            name = (probe.get("activity") or {}).get("name", "?")
            lines.append(f"{name}: {_reason(probe)}")
        break
    hypothesis = verdict + (" (" + "; ".join(lines) + ")" if lines else "")
    return {
        "status": journal.get("status", "?"),
        "deviated": bool(journal.get("deviated")),
        "hypothesis": hypothesis,
    }


def _reason(probe: dict[str, Any]) -> str:
    exception = probe.get("exception")
    if isinstance(exception, list) and exception:
        return str(exception[-1]).strip().splitlines()[-1][:200]
    return f"returned {probe.get('output')!r}"
