"""``loadlab gameday PLAN.yaml``: a game-day plan, its experiments in order, one index.

Before anything starts, every experiment is read and every fault action of it is
checked against the plan's blast radius (with the experiment's configuration
and the plan's ``vars`` filled in); the AWS account and the kube context are
checked too when the plan names them. Then each experiment runs as
``loadlab gameday EXPERIMENT`` would, into its own run directory inside the
game-day directory, with the radius handed to loadlab's chaos control (which
refuses an out-of-radius action at run time as well). The game-day directory's
``gameday.json`` indexes the runs; ``loadlab history`` reads it.

The remaining experiments are not run when one was refused by the blast
radius, or left a lease that could not be reverted. Exit 0 when at most
``pass.max_failed_experiments`` experiments failed, 6 otherwise, 2 when the plan
or an experiment's target is refused before anything started.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

from chaoslib import substitute

from loadlab.analysis.history import GAMEDAY_INDEX
from loadlab.app import gameday
from loadlab.app.options import GamedayOptions
from loadlab.app.scenarios import resolve_experiment_path
from loadlab.app.targets import check_target
from loadlab.chaos.blast_radius import ENV as RADIUS_ENV
from loadlab.chaos.blast_radius import violations
from loadlab.chaos.control import BLAST_RADIUS_REFUSED
from loadlab.chaos.stop import revert_active_faults
from loadlab.errors import ConfigError, LoadLabError, VerdictFailed
from loadlab.measure.rundir import new_run_dir
from loadlab.redact import Redactor
from loadlab.scenario.plan import BlastRadius, Plan, PlanExperiment, load_plan

__all__ = ["execute", "is_plan", "plan_violations"]

WEBHOOK_TIMEOUT_S = 5.0
CONTROL_MODULE = "loadlab.chaos.control"


def is_plan(path: Path) -> bool:
    """A game-day plan is YAML; an experiment is Chaos Toolkit JSON."""
    return path.suffix.lower() in (".yaml", ".yml")


def execute(options: GamedayOptions) -> int:
    """Run the plan's experiments in order; 0, or raise (exit 2 refused, 6 failed)."""
    plan = load_plan(resolve_experiment_path(options.experiment), find=_shipped_experiment)
    experiments = {e.path: gameday.load_experiment(e.path) for e in plan.experiments}
    for entry in plan.experiments:
        found = plan_violations(
            experiments[entry.path], plan.blast_radius, (*options.chaos.variables, *entry.variables)
        )
        if found:
            raise ConfigError(
                f"plan {plan.source.name}: {entry.path.name} would act outside the blast "
                f"radius: {'; '.join(found)}",
                hint="narrow the experiment (its configuration or the plan's vars), or widen "
                "blast_radius in the plan if that target is meant to be hit",
            )
    _check_account_and_context(plan.blast_radius, options.target or plan.target)
    for entry in plan.experiments:  # every experiment as it will run, before the first starts
        prepared = gameday.prepare(_options_for(plan, entry, options, run_dir=None))
        _require_the_control(entry.path, experiments[entry.path])
        if options.target or plan.target:
            check_target(options.target or plan.target or "", prepared.scenario.target.protocol)
    target = options.target or plan.target
    # A harness killed in the middle of an earlier game day may have left a fault in
    # force on this target: its lease is reverted before anything starts.
    before = _revert_leases(target, when="before the game day")
    day_dir = (options.run_dir or new_run_dir(options.runs_root, f"gameday-{plan.name}")).resolve()
    if day_dir.exists() and any(day_dir.iterdir()):
        raise ConfigError(
            f"game-day directory {day_dir} is not empty",
            hint="pass a new --run-dir, or leave it out for a fresh one under --runs-root",
        )
    day_dir.mkdir(parents=True, exist_ok=True)
    index: dict[str, Any] = {
        "plan": plan.name,
        "plan_path": str(plan.source),
        "started_at": time.time(),
        "ended_at": None,
        "target": options.target or plan.target or "embedded",
        "blast_radius": plan.blast_radius.to_json(),
        "experiments": [],
        "stopped": None,
        "reverted_before_start": before,
    }
    _write_index(day_dir, index)
    print(f"loadlab: game day '{plan.name}': {len(plan.experiments)} experiments -> {day_dir}")
    _notify(plan, "gameday-started", {"gameday": plan.name, "directory": str(day_dir)})
    failed = 0
    previous = os.environ.get(RADIUS_ENV)
    os.environ[RADIUS_ENV] = json.dumps(plan.blast_radius.to_json())
    try:
        for number, entry in enumerate(plan.experiments, start=1):
            result = _run_one(plan, entry, options, day_dir / f"{number:02d}-{entry.path.stem}")
            index["experiments"].append(result)
            _write_index(day_dir, index)
            _notify(plan, "experiment-finished", {"gameday": plan.name, **result})
            failed += 0 if result["passed"] else 1
            stop = _stop_reason(result, plan, day_dir / result["run_dir"])
            try:
                result["reverted_after"] = _revert_leases(target, when=f"after {result['run_dir']}")
            except ConfigError as exc:
                stop = stop or f"{result['run_dir']}: {exc.message}"
            _write_index(day_dir, index)
            if stop:
                index["stopped"] = stop
                print(f"loadlab: game day stopped: {stop}", file=sys.stderr, flush=True)
                break
    finally:
        if previous is None:
            os.environ.pop(RADIUS_ENV, None)
        else:
            os.environ[RADIUS_ENV] = previous
        index["ended_at"] = time.time()
        index["failed"] = failed
        _write_index(day_dir, index)
    passed = failed <= plan.max_failed_experiments and index["stopped"] is None
    index["passed"] = passed
    _write_index(day_dir, index)
    _print_summary(index, day_dir)
    _notify(
        plan,
        "gameday-finished",
        {"gameday": plan.name, "passed": passed, "failed": failed, "directory": str(day_dir)},
    )
    if not passed:
        raise VerdictFailed(
            f"game day '{plan.name}' failed: {failed} of {len(index['experiments'])} "
            f"experiment(s) failed (at most {plan.max_failed_experiments} may)"
            + (f"; stopped: {index['stopped']}" if index["stopped"] else ""),
            hint=f"see {day_dir / GAMEDAY_INDEX} and each run's report.html",
        )
    return 0


def _shipped_experiment(name: str) -> Path | None:
    found = resolve_experiment_path(Path(name))
    return found if found.is_file() else None


def plan_violations(
    experiment: dict[str, Any], radius: BlastRadius, variables: tuple[str, ...]
) -> list[str]:
    """Every action (method and rollbacks) that would act outside ``radius``, as sentences."""
    configuration = _configuration(experiment.get("configuration"), variables)
    found: list[str] = []
    activities = [*(experiment.get("method") or []), *(experiment.get("rollbacks") or [])]
    for activity in activities:
        if not isinstance(activity, dict) or activity.get("type") != "action":
            continue
        try:
            filled = substitute(activity, configuration, {})
        except Exception:  # an unresolvable placeholder is checked at run time by the control
            filled = activity
        provider = filled.get("provider") if isinstance(filled, dict) else None
        if not isinstance(provider, dict):
            continue
        function = f"{provider.get('module', '')}.{provider.get('func', '')}"
        arguments = provider.get("arguments")
        for problem in violations(
            function, arguments if isinstance(arguments, dict) else {}, radius
        ):
            found.append(f"action {activity.get('name', '?')!r}: {problem}")
    return found


def _configuration(raw: object, variables: tuple[str, ...]) -> dict[str, Any]:
    """The experiment's configuration as ``chaos run`` would resolve it, ``--var`` last."""
    values: dict[str, Any] = {}
    for key, value in (raw if isinstance(raw, dict) else {}).items():
        if isinstance(value, dict) and value.get("type") == "env":
            found = os.environ.get(str(value.get("key")), value.get("default"))
            if found is not None:
                values[key] = found
        elif not isinstance(value, dict):
            values[key] = value
    for variable in variables:
        name, _, text = variable.partition("=")
        values[name.split(":", 1)[0]] = text
    return values


def _check_account_and_context(radius: BlastRadius, target: str | None) -> None:
    """Refuse a game day whose AWS account or kube context is not the one the plan names."""
    if radius.aws_account_id is not None and target is not None:
        import boto3  # the account the AWS settings in the environment reach

        try:
            account = boto3.client("sts").get_caller_identity()["Account"]
        except Exception as exc:
            raise ConfigError(
                f"blast radius: cannot tell which AWS account this is ({type(exc).__name__})",
                hint="set AWS credentials for the account named in blast_radius.aws_account_id",
            ) from None
        if account != radius.aws_account_id:
            raise ConfigError(
                f"blast radius: these AWS credentials reach account {account}, "
                f"not {radius.aws_account_id}",
                hint="use the credentials of the account the plan names, or change the plan",
            )
    if radius.kube_context is not None and target is not None:
        from kubernetes import config as kube_config

        try:
            _, active = kube_config.list_kube_config_contexts()
        except Exception:
            active = None
        name = (active or {}).get("name")
        if name != radius.kube_context:
            raise ConfigError(
                f"blast radius: the kube context is {name!r}, not {radius.kube_context!r}",
                hint=f"kubectl config use-context {radius.kube_context}, or change the plan",
            )


def _run_one(
    plan: Plan, entry: PlanExperiment, options: GamedayOptions, run_dir: Path
) -> dict[str, Any]:
    """One experiment as ``loadlab gameday EXPERIMENT``; what it gave, never raising."""
    print(f"\n== {run_dir.name}: {entry.path.name}", flush=True)
    started = time.time()
    try:
        code = gameday.execute(_options_for(plan, entry, options, run_dir=run_dir))
        message = "passed"
    except LoadLabError as exc:
        code, message = exc.exit_code, exc.message
    return {
        "experiment": str(entry.path),
        "run_dir": run_dir.name,
        "exit_code": code,
        "passed": code == 0,
        "message": message,
        "started_at": started,
        "ended_at": time.time(),
    }


def _revert_leases(target: str | None, *, when: str) -> list[str]:
    """Revert every fault lease in force on ``target`` (LLM, DynamoDB, Lambda: what the
    environment points at); what was reverted. A new embedded stack has none.

    Raises :class:`ConfigError` when one cannot be reverted: nothing may run on top of a
    fault nobody controls.
    """
    if target is None:
        return []
    done: list[str] = []
    for result in revert_active_faults():
        if result.outcome == "failed":
            raise ConfigError(
                f"{when}: a fault lease on {result.target} could not be reverted: {result.detail}",
                hint="revert it by hand (see README, 'Faults are leases'), then run again",
            )
        if result.outcome == "reverted":
            line = f"{result.target}: {result.detail}"
            print(f"loadlab: {when}: lease reverted: {line}", flush=True)
            done.append(line)
    return done


def _options_for(
    plan: Plan, entry: PlanExperiment, options: GamedayOptions, *, run_dir: Path | None
) -> GamedayOptions:
    """The ``loadlab gameday EXPERIMENT`` options of one experiment of the plan."""
    return replace(
        options,
        experiment=entry.path,
        run_dir=run_dir,
        scenario=options.scenario or entry.scenario or plan.scenario,
        target=options.target or plan.target,
        chaos=replace(options.chaos, variables=(*options.chaos.variables, *entry.variables)),
    )


def _stop_reason(result: dict[str, Any], plan: Plan, run_dir: Path) -> str | None:
    """Why the remaining experiments must not run (a lease that could not be reverted
    stops the day in :func:`execute`, through :func:`_revert_leases`)."""
    refused = run_dir / BLAST_RADIUS_REFUSED
    if refused.is_file():
        return f"{result['run_dir']}: an action was refused by the blast radius ({refused.name})"
    if plan.stop_on_failure and not result["passed"]:
        return f"{result['run_dir']} failed and the plan says stop_on_failure"
    return None


def _require_the_control(path: Path, experiment: dict[str, Any]) -> None:
    """A plan's experiment declares loadlab's control: it checks the blast radius right
    before each action, and puts the faults on the run's timeline."""
    controls = experiment.get("controls") or []
    modules = {(c.get("provider") or {}).get("module") for c in controls if isinstance(c, dict)}
    if CONTROL_MODULE not in modules:
        raise ConfigError(
            f"{path.name} does not declare loadlab's control ({CONTROL_MODULE}): in a plan, "
            "every action is checked against the blast radius right before it runs",
            hint="add the loadlab-timeline control, as chaos/pod-kill-mid-session.json does",
        )


def _write_index(day_dir: Path, index: dict[str, Any]) -> None:
    path = day_dir / GAMEDAY_INDEX
    scratch = path.with_suffix(".json.tmp")
    text = json.dumps(Redactor.from_env().tree(index), indent=2, sort_keys=True)
    scratch.write_text(text + "\n")
    scratch.replace(path)


def _print_summary(index: dict[str, Any], day_dir: Path) -> None:
    print(f"\ngame day '{index['plan']}': {'PASS' if index['passed'] else 'FAIL'}")
    for result in index["experiments"]:
        mark = "PASS" if result["passed"] else f"FAIL (exit {result['exit_code']})"
        print(f"  {result['run_dir']:<40} {mark}")
    if index["stopped"]:
        print(f"  stopped: {index['stopped']}")
    print(f"game-day index: {day_dir / GAMEDAY_INDEX}")


def _notify(plan: Plan, event: str, payload: dict[str, Any]) -> None:
    """POST ``{event, ...}`` as JSON to each webhook subscribed to ``event``; never fatal."""
    for notification in plan.notifications:
        if event not in notification.events:
            continue
        body = json.dumps(Redactor.from_env().tree({"event": event, **payload})).encode()
        request = urllib.request.Request(
            notification.webhook,
            data=body,
            headers={"Content-Type": "application/json", "User-Agent": "loadlab"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as response:
                response.read(1024)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            host = urllib.parse.urlsplit(notification.webhook).hostname
            print(
                f"loadlab: warning: notification {event} to {host} failed "
                f"({type(exc).__name__}); the game day goes on",
                file=sys.stderr,
                flush=True,
            )
