"""Chaos Toolkit control that puts an experiment on loadlab's run timeline.

Every action of the experiment's method becomes a *fault* on the timeline (a
``start`` event when it begins and an ``end`` event with its status when it
returns); every probe becomes a ``probe`` event with its result; the experiment's
start and end are ``phase`` events. Analysis then joins faults with requests,
turns and sessions ("P99 in the 30 s after pod X died").

Declare it in an experiment (``loadlab gameday`` sets ``LOADLAB_RUN_DIR``)::

    "configuration": {"loadlab_run_dir": {"type": "env", "key": "LOADLAB_RUN_DIR"}},
    "controls": [{"name": "loadlab-timeline",
                  "provider": {"type": "python", "module": "loadlab.chaos.control",
                               "arguments": {"run_dir": "${loadlab_run_dir}"}}}]

loadlab's own orchestration actions (starting and waiting for the load, in
:mod:`loadlab.chaos.loadrun`), its actions that end a fault
(``llm_faults_clear``, ``clear_kill_orders``, ...) and the experiment's rollbacks
are recorded as ``note`` events, not faults. A fault whose action returns a JSON object (the
:mod:`loadlab.chaos.downstream` actions do) has that object's scalar values
copied into its end event's ``attrs`` (``rpm``, ``wcu``, ``expires_at`` ...), and
its ``expires_at`` becomes the event's ``lease_expires``: the fault is a lease.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any

from chaoslib import substitute
from chaoslib.exceptions import InterruptExecution

from loadlab.chaos.blast_radius import radius_from_env, violations
from loadlab.rows import TimelineEvent, append_lines, event_line

__all__ = [
    "after_activity_control",
    "after_experiment_control",
    "before_activity_control",
    "before_experiment_control",
]

log = logging.getLogger("chaostoolkit")

_ORCHESTRATION_MODULES = ("loadlab.chaos.loadrun",)
# loadlab actions that end a fault (a method may end its fault with the sale, before
# the hypothesis is checked again): notes, like rollbacks, not faults of their own
_REVERTING_ACTIONS = frozenset(
    {
        "llm_faults_clear",
        "dynamodb_capacity_restore",
        "clear_kill_orders",
        "restore_concurrency",
        "restore_configuration",
        "revert_expired_leases",
    }
)
_TARGET_ARGUMENTS = (
    "name",
    "label_selector",
    "ns",
    "function_name",
    "pod",
    "target",
    "table",
    "url",
)
# Chaos Toolkit calls these module-level functions with the activity dict and
# nothing to hang state on, so a fault's id travels from its start to its end
# through this map (keyed by the activity dict's identity, emptied at the end).
_OPEN_FAULTS: dict[int, str] = {}


def before_experiment_control(context: dict[str, Any], run_dir: str = "", **_: Any) -> None:
    """Stamp the experiment's start on the timeline."""
    _write(run_dir, "phase", "experiment_start", None, {"title": context.get("title")})


def after_experiment_control(
    context: dict[str, Any], state: Any = None, run_dir: str = "", **_: Any
) -> None:
    """Stamp the experiment's end, with its status and whether it deviated."""
    status = state.get("status") if isinstance(state, dict) else None
    deviated = state.get("deviated") if isinstance(state, dict) else None
    _write(
        run_dir,
        "phase",
        "experiment_end",
        None,
        {"title": context.get("title"), "status": status, "deviated": deviated},
    )


def before_activity_control(
    context: dict[str, Any],
    run_dir: str = "",
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
    *,
    experiment: dict[str, Any] | None = None,
    **_: Any,
) -> None:
    """Refuse an action outside a game day's blast radius (rollbacks included); record the
    start of a fault (an action that is neither orchestration nor a rollback)."""
    if context.get("type") != "action":
        return
    key = id(context)
    rollback = _is_rollback(context, experiment)  # by identity: before substitution copies it
    filled = _substituted(context, configuration, secrets)
    if not str(_provider(filled).get("module", "")).startswith(_ORCHESTRATION_MODULES):
        _check_blast_radius(filled, run_dir)
    if _is_orchestration(filled) or rollback:
        return
    context = filled
    fault_id = uuid.uuid4().hex[:12]
    _OPEN_FAULTS[key] = fault_id
    _write(
        run_dir,
        "fault",
        str(context.get("name", "action")),
        _target(context),
        {"fault_id": fault_id, "phase": "start", "status": None, "activity": _func(context)},
    )


def after_activity_control(
    context: dict[str, Any],
    state: Any = None,
    run_dir: str = "",
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
    *,
    experiment: dict[str, Any] | None = None,
    **_: Any,
) -> None:
    """Record how an activity ended: a fault's end, a probe's result, or a note."""
    key = id(context)
    rollback = _is_rollback(context, experiment)  # by identity: before substitution copies it
    context = _substituted(context, configuration, secrets)
    run = state if isinstance(state, dict) else {}
    status = run.get("status")
    output = _short(run.get("output"))
    name = str(context.get("name", context.get("type", "activity")))
    if context.get("type") == "probe":
        _write(run_dir, "probe", name, _target(context), {"status": status, "output": output})
        return
    if _is_orchestration(context) or rollback:
        _write(run_dir, "note", name, None, {"status": status, "output": output})
        return
    fault_id = _OPEN_FAULTS.pop(key, uuid.uuid4().hex[:12])
    target = _target(context)
    if isinstance(run.get("output"), list) and all(isinstance(x, str) for x in run["output"]):
        target = ",".join(run["output"]) or target  # e.g. the pods terminate_pods killed
    attrs = {
        "fault_id": fault_id,
        "phase": "end",
        "status": status,
        "activity": _func(context),
        "output": output,
        "error": _short(run.get("exception")),
    }
    reported = _reported(run.get("output"))
    if target is None and isinstance(reported.get("target"), str):
        target = reported["target"]
    lease = reported.get("expires_at")
    _write(
        run_dir,
        "fault",
        name,
        target,
        reported | attrs,
        lease_expires=float(lease) if isinstance(lease, int | float) else None,
    )


def _write(
    run_dir: str,
    kind: str,
    name: str,
    target: str | None,
    attrs: dict[str, Any],
    *,
    lease_expires: float | None = None,
) -> None:
    if not run_dir or run_dir.startswith("${"):
        log.warning("loadlab control: no run_dir (set LOADLAB_RUN_DIR); not recording %s", name)
        return
    path = Path(run_dir)
    if not path.is_dir():
        log.warning("loadlab control: run directory %s does not exist; not recording", path)
        return
    event = TimelineEvent(
        t=time.time(),
        kind=kind,
        name=name,
        target=target,
        lease_expires=lease_expires,
        attrs=attrs,
    )
    append_lines(path / "events.jsonl", [event_line(event)])


BLAST_RADIUS_REFUSED = "blast_radius_refused.json"
"""Written into the run directory when the control refused an action: the game day stops."""


def _check_blast_radius(context: dict[str, Any], run_dir: str) -> None:
    """Interrupt the experiment before an action that would act outside the game day's radius."""
    radius = radius_from_env()
    if radius is None:
        return
    arguments = _provider(context).get("arguments")
    found = violations(_func(context), arguments if isinstance(arguments, dict) else {}, radius)
    if not found:
        return
    name = str(context.get("name", "action"))
    if run_dir and not run_dir.startswith("${") and Path(run_dir).is_dir():
        record = {"action": name, "activity": _func(context), "violations": found}
        (Path(run_dir) / BLAST_RADIUS_REFUSED).write_text(json.dumps(record, indent=2) + "\n")
    _write(run_dir, "note", f"refused: {name}", _target(context), {"violations": "; ".join(found)})
    raise InterruptExecution(f"loadlab refused action {name!r}: " + "; ".join(found))


def _substituted(
    context: dict[str, Any], configuration: dict[str, Any] | None, secrets: dict[str, Any] | None
) -> dict[str, Any]:
    """The activity with ``${...}`` placeholders filled, as Chaos Toolkit will run it."""
    if not configuration and not secrets:
        return context
    try:
        filled = substitute(context, configuration or {}, secrets or {})
    except Exception:  # a control must never break the experiment it records
        return context
    return filled if isinstance(filled, dict) else context


def _provider(context: dict[str, Any]) -> dict[str, Any]:
    provider = context.get("provider")
    return provider if isinstance(provider, dict) else {}


def _func(context: dict[str, Any]) -> str:
    provider = _provider(context)
    return f"{provider.get('module', provider.get('type', '?'))}.{provider.get('func', '')}"


def _is_orchestration(context: dict[str, Any]) -> bool:
    provider = _provider(context)
    module = str(provider.get("module", ""))
    if module.startswith(_ORCHESTRATION_MODULES):
        return True
    return module.startswith("loadlab.chaos.") and provider.get("func") in _REVERTING_ACTIONS


def _is_rollback(context: dict[str, Any], experiment: dict[str, Any] | None) -> bool:
    rollbacks = (experiment or {}).get("rollbacks")
    return isinstance(rollbacks, list) and any(context is r for r in rollbacks)


def _reported(output: Any) -> dict[str, Any]:
    """The scalar values of an action's JSON-object output (what the fault set, its lease)."""
    if not isinstance(output, dict):
        return {}
    return {
        str(k): v for k, v in output.items() if v is None or isinstance(v, str | bool | int | float)
    }


def _target(context: dict[str, Any]) -> str | None:
    arguments = _provider(context).get("arguments")
    if not isinstance(arguments, dict):
        return None
    parts = [f"{k}={arguments[k]}" for k in _TARGET_ARGUMENTS if arguments.get(k) not in (None, "")]
    return " ".join(parts) or None


def _short(value: Any, limit: int = 500) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
