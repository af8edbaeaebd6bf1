"""``loadlab gameday``: a Chaos Toolkit experiment with loadlab's load, timeline and report.

Without ``--target``, the embedded stack is started and the experiment reaches
it through the same APIs it would use in the cloud: the agent over HTTP
(``LOADLAB_TARGET_URL``), the pods through the Kubernetes API
(``KUBECONFIG``: the stack's kubeconfig, the pods API with the stack's token;
``KUBERNETES_HOST`` names the same API).
``chaos run`` writes its journal into the run directory beside loadlab's files;
its ``start_load`` action starts the load (:mod:`loadlab.chaos.loadrun`).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import importlib
import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
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
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"experiment file {str(path)!r} not found",
            hint="pass a Chaos Toolkit experiment file, e.g. chaos/pod-kill-mid-session.json",
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            f"experiment {str(path)!r} is a directory, not a file",
            hint="pass the experiment's JSON file, e.g. chaos/pod-kill-mid-session.json",
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"experiment {str(path)!r} cannot be read ({exc.strerror or exc})",
            hint="pass a readable Chaos Toolkit experiment file",
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"experiment {path} is not UTF-8 text (byte {exc.start}: {exc.reason}); "
            "a binary file, or JSON saved as UTF-16?",
            hint="save the experiment as UTF-8 JSON",
        ) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"experiment {path} is not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}",
            hint="fix the JSON (e.g. a trailing comma or a missing quote) and run again",
        ) from None
    except RecursionError:
        raise ConfigError(
            f"experiment {path} nests its JSON too deeply to read",
            hint="check for unbalanced brackets",
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
    _check_activity_objects(path, data)
    return data


def _check_activity_objects(path: Path, experiment: dict[str, Any]) -> None:
    """Every activity is an object: chaoslib's validation assumes so and fails on ``[1, 2]``."""
    hypothesis = experiment.get("steady-state-hypothesis")
    if hypothesis is not None and not isinstance(hypothesis, dict):
        raise ConfigError(
            f"experiment {path}: 'steady-state-hypothesis' is {_short(hypothesis)}, not an object",
            hint='write {"title": ..., "probes": [...]}',
        )
    where: list[tuple[str, object]] = [("method", experiment["method"])]
    if "rollbacks" in experiment:
        where.append(("rollbacks", experiment["rollbacks"]))
    if hypothesis is not None and "probes" in hypothesis:
        where.append(("steady-state-hypothesis.probes", hypothesis["probes"]))
    for key, activities in where:
        if not isinstance(activities, list):
            raise ConfigError(
                f"experiment {path}: '{key}' is {_short(activities)}, not a list of activities",
                hint="write a list of action and probe objects",
            )
        for i, activity in enumerate(activities):
            if not isinstance(activity, dict):
                raise ConfigError(
                    f"experiment {path}: {key}[{i}] is {_short(activity)}, not an activity",
                    hint='each activity is an object: {"type": "action", "name": ..., '
                    '"provider": {...}} or {"ref": "name"}',
                )
            provider = activity.get("provider")
            if provider is not None and not isinstance(provider, dict):
                raise ConfigError(
                    f"experiment {path}: {key}[{i}].provider is {_short(provider)}, not an object",
                    hint='write "provider": {"type": "python", "module": ..., "func": ...}',
                )


def validate_experiment(path: Path, experiment: dict[str, Any], env: dict[str, str]) -> None:
    """Chaos Toolkit's own validation, as ``chaos run`` will do it, before anything starts.

    ``ensure_experiment_is_valid`` checks the hypothesis, every activity (a
    Python activity's module imports and its function takes the arguments
    given), controls and configuration. Configuration and secrets are read
    from the environment, so it runs with the environment ``chaos run`` will
    get (``env``).
    """
    from chaoslib.exceptions import ChaosException
    from chaoslib.experiment import ensure_experiment_is_valid

    chaos_logger = logging.getLogger("chaostoolkit")
    level = chaos_logger.level
    chaos_logger.setLevel(logging.WARNING)  # its progress lines are for `chaos run` to print
    try:
        with _environment(env):
            ensure_experiment_is_valid(copy.deepcopy(experiment))
    except ChaosException as exc:
        raise ConfigError(
            f"experiment {path} does not validate: {_short_text(exc)}",
            hint="fix the experiment (`chaos validate` says the same); nothing was started",
        ) from None
    except Exception as exc:  # importing an activity's module runs arbitrary code
        raise ConfigError(
            f"experiment {path} does not validate: {type(exc).__name__}: {_short_text(exc)}",
            hint="fix the experiment or the module it names; nothing was started",
        ) from None
    finally:
        chaos_logger.setLevel(level)
    _check_control_modules(path, experiment)


def _check_control_modules(path: Path, experiment: dict[str, Any]) -> None:
    """A control whose module does not import is an error, not chaoslib's warning.

    ``chaos run`` carries on without it, which for ``loadlab.chaos.control``
    means a game day without its fault timeline.
    """
    controls = experiment.get("controls") or []
    if not isinstance(controls, list):
        raise ConfigError(f"experiment {path}: 'controls' is {_short(controls)}, not a list")
    for i, control in enumerate(controls):
        provider = control.get("provider") if isinstance(control, dict) else None
        if not isinstance(provider, dict) or provider.get("type", "python") != "python":
            continue
        module = provider.get("module")
        try:
            importlib.import_module(str(module))
        except ImportError:
            name = control.get("name", f"controls[{i}]")
            raise ConfigError(
                f"experiment {path}: control {name!r} names module {module!r}, "
                "which cannot be imported",
                hint="fix the module name (loadlab's timeline is loadlab.chaos.control), "
                "or install the package that provides it",
            ) from None


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """``os.environ`` set to ``env`` for the block (single-threaded: before anything starts)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:80] + "..."


def _short_text(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:300] + "..."


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


@dataclass(frozen=True, slots=True)
class Prepared:
    """A game day checked and ready to start: nothing has started yet."""

    experiment_path: Path
    scenario: Scenario
    env: dict[str, str]


def prepare(options: GamedayOptions) -> Prepared:
    """Check everything a game day needs before anything starts (experiment, activities,
    controls, variables, scenario); raise :class:`ConfigError` naming what is wrong."""
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
    env = _clean_env() | {"LOADLAB_SCENARIO": str(scenario_path)}
    if options.target:
        env["LOADLAB_TARGET_URL"] = options.target
    if options.metrics_port:  # read by the Locust plugin of the experiment's start_load
        env["LOADLAB_METRICS_PORT"] = str(options.metrics_port)
    if options.workers:  # read by start_load: a Locust master and this many workers
        env["LOADLAB_WORKERS"] = str(options.workers)
    # Everything is checked before anything starts: a refused game day leaves no
    # stack, no run directory and no chaostoolkit.log behind.
    later = _SET_WHEN_STARTED if options.target else _SET_WHEN_STARTED | _SET_BY_THE_STACK
    validate_experiment(experiment_path, experiment, env | dict.fromkeys(later, _NOT_YET))
    return Prepared(experiment_path=experiment_path, scenario=scenario, env=env)


async def _gameday(options: GamedayOptions) -> int:
    prepared = prepare(options)
    experiment_path, scenario, env = prepared.experiment_path, prepared.scenario, prepared.env
    if options.target:
        check_target(options.target, scenario.target.protocol)
        run_dir = _start_run_dir(options, experiment_path, env)
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
            run_dir = _start_run_dir(options, experiment_path, env)
            env |= {
                "LOADLAB_TARGET_URL": endpoints.agent_url,
                "LOADLAB_JWT_SECRET": state.jwt_secret,
                "KUBERNETES_HOST": endpoints.fleet_url,  # KUBECONFIG: pressure_env, below
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


_NOT_YET = "(set when the game day starts)"
_SET_WHEN_STARTED = frozenset({"LOADLAB_RUN_DIR"})
_SET_BY_THE_STACK = frozenset(
    {
        "LOADLAB_TARGET_URL",
        "LOADLAB_JWT_SECRET",
        "KUBERNETES_HOST",
        "KUBECONFIG",
        "LOADLAB_LLM_URL",
        "LOADLAB_DDB_GATE_URL",
        "LOADLAB_LAMBDA_FUNCTION",
        "LOADLAB_TARGET_LAMBDA_FUNCTION",
    }
)
"""What ``chaos run`` finds in its environment that exists only once the game day started."""


def _start_run_dir(options: GamedayOptions, experiment: Path, env: dict[str, str]) -> Path:
    """Create the run directory (checked free when the options were built) and name it in env."""
    run_dir = (options.run_dir or new_run_dir(options.runs_root, experiment.stem)).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    env["LOADLAB_RUN_DIR"] = str(run_dir)
    print(f"loadlab: game day '{experiment.name}' -> {run_dir}", flush=True)
    return run_dir


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
    # set per game day from its own options, never inherited from the shell
    for key in (
        "LOADLAB_RUN_DIR",
        "LOADLAB_TARGET_URL",
        "LOADLAB_WORKERS",
        "LOADLAB_METRICS_PORT",
    ):
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
    if (run_dir / JOURNAL).exists():
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
