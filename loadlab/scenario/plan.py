"""Game-day plans: a target, a scenario, experiments in order, pass criteria, a blast radius.

A plan is what a scheduled game day runs (``loadlab gameday PLAN.yaml``)::

    name: nightly
    target: embedded              # or the agent's URL (staging)
    scenario: gameday.yaml        # default for every experiment
    experiments:
      - chaos/pod-kill-mid-session.json
      - path: chaos/llm-429-storm.json
        vars: {fault_duration_s: 10}      # Chaos Toolkit --var, per experiment
    pass:
      max_failed_experiments: 0           # default: every experiment must pass
      stop_on_failure: false              # run the rest after a failed experiment
    blast_radius:                          # every fault action is checked against it
      namespaces: [default]
      label_selectors: ["app=shopping-agent"]
      lambda_functions: [loadlab-agent]
      aws_account_id: "000000000000"
      kube_context: staging
    notifications:
      - webhook: https://hooks.example.com/gameday
        events: [gameday-started, experiment-finished, gameday-finished]

Relative experiment paths are read relative to the plan file, then to the
working directory. Every value is checked here, with errors that name the key
and the fix, before anything starts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadlab.errors import ScenarioError
from loadlab.scenario.urls import url_problem
from loadlab.scenario.yaml_text import read_yaml_file

__all__ = [
    "NOTIFICATION_EVENTS",
    "BlastRadius",
    "Notification",
    "Plan",
    "PlanExperiment",
    "load_plan",
    "parse_plan",
]

NOTIFICATION_EVENTS = ("gameday-started", "experiment-finished", "gameday-finished")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_VAR_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_SELECTOR_PART = re.compile(r"[A-Za-z0-9./_-]+\s*(=|==|!=)\s*[A-Za-z0-9._-]*")


@dataclass(frozen=True, slots=True)
class BlastRadius:
    """What a game day may touch. An empty list allows anything of that kind."""

    namespaces: tuple[str, ...] = ()
    label_selectors: tuple[str, ...] = ()
    lambda_functions: tuple[str, ...] = ()
    aws_account_id: str | None = None
    kube_context: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The form ``LOADLAB_BLAST_RADIUS`` carries to the chaos control."""
        return {
            "namespaces": list(self.namespaces),
            "label_selectors": list(self.label_selectors),
            "lambda_functions": list(self.lambda_functions),
            "aws_account_id": self.aws_account_id,
            "kube_context": self.kube_context,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BlastRadius:
        """Inverse of :meth:`to_json`."""
        return cls(
            namespaces=tuple(data.get("namespaces") or ()),
            label_selectors=tuple(data.get("label_selectors") or ()),
            lambda_functions=tuple(data.get("lambda_functions") or ()),
            aws_account_id=data.get("aws_account_id"),
            kube_context=data.get("kube_context"),
        )


@dataclass(frozen=True, slots=True)
class PlanExperiment:
    """One experiment of the plan and its Chaos Toolkit ``--var`` values (``key=value``)."""

    path: Path
    variables: tuple[str, ...] = ()
    scenario: str | None = None


@dataclass(frozen=True, slots=True)
class Notification:
    """A webhook told of the game day's progress (JSON POST, 5 s timeout, never fatal)."""

    webhook: str
    events: tuple[str, ...] = NOTIFICATION_EVENTS


@dataclass(frozen=True, slots=True)
class Plan:
    """A validated game-day plan (see the module docstring)."""

    name: str
    source: Path
    target: str | None
    scenario: str | None
    experiments: tuple[PlanExperiment, ...]
    max_failed_experiments: int = 0
    stop_on_failure: bool = False
    blast_radius: BlastRadius = field(default_factory=BlastRadius)
    notifications: tuple[Notification, ...] = ()


def load_plan(path: Path, *, find: Callable[[str], Path | None] | None = None) -> Plan:
    """Read and validate a plan file; :class:`ScenarioError` (exit 2) names what is wrong.

    ``find`` looks up an experiment that is neither beside the plan nor under the
    working directory (e.g. a shipped experiment named by file name).
    """
    data = read_yaml_file(path, kind="game-day plan", example="chaos/plans/nightly.yaml")
    return parse_plan(data, path, find=find)


def parse_plan(
    data: object, path: Path, *, find: Callable[[str], Path | None] | None = None
) -> Plan:
    """Validate a plan given as parsed YAML; relative paths are taken from ``path``'s folder."""
    source = str(path)

    def fail(key: str, message: str, hint: str) -> ScenarioError:
        return ScenarioError(f"{source}: {key}: {message}", hint=hint)

    if not isinstance(data, dict):
        raise ScenarioError(
            f"{source}: a game-day plan must be a mapping, not {_kind(data)}",
            hint="start from chaos/plans/nightly.yaml",
        )
    known = {
        "name",
        "description",
        "target",
        "scenario",
        "experiments",
        "pass",
        "blast_radius",
        "notifications",
    }
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise fail(unknown[0], "unknown key", f"the keys of a plan are: {', '.join(sorted(known))}")
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise fail("name", f"{name!r} is not a name", "letters, digits, '.', '_' or '-'")
    target = _target(data.get("target", "embedded"), fail)
    scenario = _optional_text(data, "scenario", fail)
    experiments = _experiments(data.get("experiments"), path, fail, find)
    max_failed, stop_on_failure = _pass(data.get("pass", {}), fail)
    radius = _blast_radius(data.get("blast_radius", {}), fail)
    notifications = _notifications(data.get("notifications", []), fail)
    return Plan(
        name=name,
        source=path,
        target=target,
        scenario=scenario,
        experiments=experiments,
        max_failed_experiments=max_failed,
        stop_on_failure=stop_on_failure,
        blast_radius=radius,
        notifications=notifications,
    )


def _kind(value: object) -> str:
    return "nothing" if value is None else f"a {type(value).__name__}"


def _optional_text(data: dict[str, Any], key: str, fail: Any) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise fail(key, f"must be a non-empty string, not {_kind(value)}", "e.g. gameday.yaml")
    return value


def _target(value: object, fail: Any) -> str | None:
    if value == "embedded":
        return None
    if not isinstance(value, str):
        raise fail("target", f"must be 'embedded' or a URL, not {_kind(value)}", "e.g. embedded")
    problem = url_problem(value)
    if problem is not None:
        raise fail(
            "target",
            f"{value!r} is neither 'embedded' nor a usable http(s) URL: {problem}",
            "write target: embedded, or the agent's URL, e.g. https://agent.staging.example.com",
        )
    return value


def _experiments(
    value: object, plan_path: Path, fail: Any, find: Callable[[str], Path | None] | None
) -> tuple[PlanExperiment, ...]:
    if not isinstance(value, list) or not value:
        raise fail(
            "experiments",
            f"must be a non-empty list, not {_kind(value)}",
            "list the experiment files in the order they run, e.g. "
            "- chaos/pod-kill-mid-session.json",
        )
    out: list[PlanExperiment] = []
    for index, item in enumerate(value):
        key = f"experiments[{index}]"
        entry = {"path": item} if isinstance(item, str) else item
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise fail(
                key,
                f"must be a path or a mapping with 'path', not {_kind(item)}",
                "e.g. - path: chaos/llm-429-storm.json",
            )
        extra = sorted(str(k) for k in entry if k not in ("path", "vars", "scenario"))
        if extra:
            raise fail(f"{key}.{extra[0]}", "unknown key", "an experiment has path, vars, scenario")
        out.append(
            PlanExperiment(
                path=_experiment_path(entry["path"], plan_path, f"{key}.path", fail, find),
                variables=_variables(entry.get("vars", {}), f"{key}.vars", fail),
                scenario=_optional_text(entry, "scenario", fail),
            )
        )
    return tuple(out)


def _experiment_path(
    text: str, plan_path: Path, key: str, fail: Any, find: Callable[[str], Path | None] | None
) -> Path:
    given = Path(text)
    candidates = [given] if given.is_absolute() else [plan_path.parent / given, Path.cwd() / given]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    found = find(text) if find is not None else None
    if found is not None and found.is_file():
        return found.resolve()
    raise fail(
        key,
        f"experiment file {text!r} not found (looked in {plan_path.parent} and {Path.cwd()})",
        "give the path relative to the plan file or to the working directory",
    )


def _variables(value: object, key: str, fail: Any) -> tuple[str, ...]:
    if not isinstance(value, dict):
        raise fail(key, f"must be a mapping, not {_kind(value)}", "e.g. vars: {fault_s: 10}")
    out: list[str] = []
    for name, item in value.items():
        if not isinstance(name, str) or not _VAR_KEY.fullmatch(name):
            raise fail(f"{key}.{name}", "is not a configuration key", "e.g. fault_duration_s")
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise fail(f"{key}.{name}", f"must be a string or a number, not {_kind(item)}", "")
        if isinstance(item, float) and not math.isfinite(item):
            raise fail(f"{key}.{name}", f"{item} is not a finite number", "e.g. 10 or 0.5")
        typed = ":int" if isinstance(item, int) else ":float" if isinstance(item, float) else ""
        out.append(f"{name}{typed}={item}")
    return tuple(out)


def _pass(value: object, fail: Any) -> tuple[int, bool]:
    if not isinstance(value, dict):
        raise fail(
            "pass", f"must be a mapping, not {_kind(value)}", "e.g. max_failed_experiments: 0"
        )
    extra = sorted(str(k) for k in value if k not in ("max_failed_experiments", "stop_on_failure"))
    if extra:
        raise fail(
            f"pass.{extra[0]}", "unknown key", "pass has max_failed_experiments, stop_on_failure"
        )
    max_failed = value.get("max_failed_experiments", 0)
    if isinstance(max_failed, bool) or not isinstance(max_failed, int) or max_failed < 0:
        raise fail("pass.max_failed_experiments", f"{max_failed!r} is not a count >= 0", "e.g. 0")
    stop = value.get("stop_on_failure", False)
    if not isinstance(stop, bool):
        raise fail("pass.stop_on_failure", f"{stop!r} is not true or false", "true or false")
    return max_failed, stop


def _strings(value: object, key: str, fail: Any, example: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise fail(key, f"must be a list of non-empty strings, not {value!r}"[:200], example)
    return tuple(value)


def _blast_radius(value: object, fail: Any) -> BlastRadius:
    if not isinstance(value, dict):
        raise fail("blast_radius", f"must be a mapping, not {_kind(value)}", "e.g. namespaces: [x]")
    allowed = (
        "namespaces",
        "label_selectors",
        "lambda_functions",
        "aws_account_id",
        "kube_context",
    )
    extra = sorted(str(k) for k in value if k not in allowed)
    if extra:
        raise fail(f"blast_radius.{extra[0]}", "unknown key", f"use {', '.join(allowed)}")
    selectors = _strings(value.get("label_selectors"), "blast_radius.label_selectors", fail, "")
    for selector in selectors:
        if not all(_SELECTOR_PART.fullmatch(p.strip()) for p in selector.split(",")):
            raise fail(
                "blast_radius.label_selectors",
                f"{selector!r} is not an equality label selector",
                "write key=value pairs separated by commas, e.g. app=shopping-agent,tier=canary",
            )
    account = value.get("aws_account_id")
    if account is not None:
        account = str(account)
        if not re.fullmatch(r"\d{12}", account):
            raise fail(
                "blast_radius.aws_account_id",
                f"{account!r} is not a 12-digit AWS account id",
                'quote it in YAML so leading zeros survive: "000000000000"',
            )
    context = value.get("kube_context")
    if context is not None and (not isinstance(context, str) or not context):
        raise fail("blast_radius.kube_context", f"{context!r} is not a context name", "")
    return BlastRadius(
        namespaces=_strings(value.get("namespaces"), "blast_radius.namespaces", fail, ""),
        label_selectors=selectors,
        lambda_functions=_strings(
            value.get("lambda_functions"), "blast_radius.lambda_functions", fail, ""
        ),
        aws_account_id=account,
        kube_context=context,
    )


def _notifications(value: object, fail: Any) -> tuple[Notification, ...]:
    if not isinstance(value, list):
        raise fail("notifications", f"must be a list, not {_kind(value)}", "- webhook: URL")
    out: list[Notification] = []
    for index, item in enumerate(value):
        key = f"notifications[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("webhook"), str):
            raise fail(key, "must be a mapping with a 'webhook' URL", "- webhook: https://...")
        url = item["webhook"]
        if url_problem(url) is not None:
            raise fail(
                f"{key}.webhook", "is not an http(s) URL", "e.g. https://hooks.example.com/x"
            )
        events = _strings(item.get("events"), f"{key}.events", fail, "") or NOTIFICATION_EVENTS
        wrong = [e for e in events if e not in NOTIFICATION_EVENTS]
        if wrong:
            raise fail(
                f"{key}.events",
                f"unknown event {wrong[0]!r}",
                f"use {', '.join(NOTIFICATION_EVENTS)}",
            )
        out.append(Notification(webhook=url, events=events))
    return tuple(out)
