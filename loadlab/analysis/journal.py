"""The outcome of a Chaos Toolkit experiment, read from its journal.

``chaos run --journal-path RUN_DIR/journal.json`` writes the journal chaoslib
builds in ``chaoslib.run`` (``initialize_run_journal``): the overall ``status``
and ``deviated`` flag, the steady-state hypothesis as run before the method,
after it and (with a continuous strategy) during it, each a list of probe runs
with their ``tolerance_met``; the method's activity runs (``run``) and the
``rollbacks``. Timestamps there are ISO 8601; here they are epoch seconds, so
they sit on the run timeline with everything else.

A probe *deviated* when its ``tolerance_met`` is false (chaoslib stops the
hypothesis at the first such probe, so in each phase it is the last one run).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadlab.errors import RunDirectoryError

__all__ = [
    "JOURNAL",
    "ActivityRun",
    "DeviatedProbe",
    "ExperimentOutcome",
    "ProbeResult",
    "SteadyState",
    "read_journal",
]

JOURNAL = "journal.json"
_MAX_VALUE_CHARS = 300


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe of a steady-state hypothesis: what it returned against its tolerance."""

    name: str
    tolerance: Any
    value: Any
    status: str | None
    tolerance_met: bool | None

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return {
            "name": self.name,
            "tolerance": self.tolerance,
            "value": self.value,
            "status": self.status,
            "tolerance_met": self.tolerance_met,
        }


@dataclass(frozen=True, slots=True)
class SteadyState:
    """One run of the steady-state hypothesis."""

    steady_state_met: bool | None
    probes: tuple[ProbeResult, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return {
            "steady_state_met": self.steady_state_met,
            "probes": [p.to_json() for p in self.probes],
        }


@dataclass(frozen=True, slots=True)
class ActivityRun:
    """One activity of the method (or a rollback) as it ran; times in epoch seconds."""

    name: str
    type: str
    status: str | None
    start: float | None
    end: float | None
    error: str | None
    output: Any

    def to_json(self, t0: float | None = None) -> dict[str, Any]:
        """A JSON-safe dict; with ``t0``, ``t`` is the start in seconds since the run began."""
        return {
            "name": self.name,
            "type": self.type,
            "status": self.status,
            "start": self.start,
            "end": self.end,
            "t": None if t0 is None or self.start is None else self.start - t0,
            "duration_s": (
                None if self.start is None or self.end is None else self.end - self.start
            ),
            "error": self.error,
            "output": self.output,
        }


@dataclass(frozen=True, slots=True)
class DeviatedProbe:
    """A hypothesis probe whose tolerance was not met, and in which phase."""

    phase: str
    name: str
    tolerance: Any
    value: Any
    status: str | None


@dataclass(frozen=True, slots=True)
class ExperimentOutcome:
    """What a Chaos Toolkit experiment concluded (see the module docstring)."""

    title: str | None
    status: str | None
    deviated: bool
    start: float | None
    end: float | None
    before: SteadyState | None
    after: SteadyState | None
    during: tuple[SteadyState, ...]
    method: tuple[ActivityRun, ...]
    rollbacks: tuple[ActivityRun, ...]
    chaoslib_version: str | None

    @property
    def outcome(self) -> str:
        """What ``chaos run`` prints at the end: ``deviated``, else the status."""
        return "deviated" if self.deviated else (self.status or "unknown")

    @property
    def hypothesis_met(self) -> bool | None:
        """True if every hypothesis run met the steady state, None if none ran."""
        states = [s for s in (self.before, *self.during, self.after) if s is not None]
        judged = [s.steady_state_met for s in states if s.steady_state_met is not None]
        if not judged:
            return None
        return all(judged)

    @property
    def deviated_probes(self) -> tuple[DeviatedProbe, ...]:
        """Each probe, in each hypothesis run, whose tolerance was not met."""
        phases: list[tuple[str, SteadyState | None]] = [("before", self.before)]
        phases += [(f"during[{i}]", s) for i, s in enumerate(self.during)]
        phases.append(("after", self.after))
        return tuple(
            DeviatedProbe(
                phase=phase, name=p.name, tolerance=p.tolerance, value=p.value, status=p.status
            )
            for phase, state in phases
            if state is not None
            for p in state.probes
            if p.tolerance_met is False
        )

    def to_json(self, t0: float | None = None) -> dict[str, Any]:
        """summary.json's ``experiment`` section."""
        deviated = self.deviated_probes
        return {
            "source": JOURNAL,
            "title": self.title,
            "status": self.status,
            "deviated": self.deviated,
            "outcome": self.outcome,
            "hypothesis_met": self.hypothesis_met,
            "start": self.start,
            "end": self.end,
            "chaoslib_version": self.chaoslib_version,
            "steady_states": {
                "before": self.before.to_json() if self.before else None,
                "after": self.after.to_json() if self.after else None,
                "during": [s.to_json() for s in self.during],
            },
            "method": [a.to_json(t0) for a in self.method],
            "rollbacks": [a.to_json(t0) for a in self.rollbacks],
            "deviated_probe": deviated[0].name if deviated else None,
            "deviated_probes": [
                {
                    "phase": d.phase,
                    "name": d.name,
                    "tolerance": d.tolerance,
                    "value": d.value,
                    "status": d.status,
                }
                for d in deviated
            ],
        }


def read_journal(path: Path | str) -> ExperimentOutcome:
    """Read a Chaos Toolkit journal; RunDirectoryError if it is not one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RunDirectoryError(
            f"{path} is not a readable Chaos Toolkit journal ({exc})",
            hint="write it with `chaos run --journal-path <run dir>/journal.json`",
        ) from exc
    if not isinstance(data, dict) or ("steady_states" not in data and "run" not in data):
        raise RunDirectoryError(
            f"{path} is JSON but not a Chaos Toolkit journal (no steady_states or run)",
            hint="write it with `chaos run --journal-path <run dir>/journal.json`",
        )
    states = _dict(data.get("steady_states"))
    experiment = _dict(data.get("experiment"))
    during = states.get("during")
    during_states = [_steady_state(x) for x in (during if isinstance(during, list) else [])]
    return ExperimentOutcome(
        title=_opt_str(experiment.get("title")),
        status=_opt_str(data.get("status")),
        deviated=bool(data.get("deviated")),
        start=_epoch(data.get("start")),
        end=_epoch(data.get("end")),
        before=_steady_state(states.get("before")),
        after=_steady_state(states.get("after")),
        during=tuple(s for s in during_states if s is not None),
        method=_activities(data.get("run")),
        rollbacks=_activities(data.get("rollbacks")),
        chaoslib_version=_opt_str(data.get("chaoslib-version")),
    )


def _steady_state(raw: Any) -> SteadyState | None:
    if not isinstance(raw, dict):
        return None
    met = raw.get("steady_state_met")
    probes = raw.get("probes")
    return SteadyState(
        steady_state_met=met if isinstance(met, bool) else None,
        probes=tuple(
            _probe(p) for p in (probes if isinstance(probes, list) else []) if isinstance(p, dict)
        ),
    )


def _probe(run: dict[str, Any]) -> ProbeResult:
    activity = _dict(run.get("activity"))
    met = run.get("tolerance_met")
    return ProbeResult(
        name=_activity_name(activity),
        tolerance=_compact(activity.get("tolerance")),
        value=_compact(run.get("output")),
        status=_opt_str(run.get("status")),
        tolerance_met=met if isinstance(met, bool) else None,
    )


def _activities(raw: Any) -> tuple[ActivityRun, ...]:
    if not isinstance(raw, list):
        return ()
    out: list[ActivityRun] = []
    for run in raw:
        if not isinstance(run, dict):
            continue
        activity = _dict(run.get("activity"))
        exception = run.get("exception")
        error = None
        if isinstance(exception, list) and exception:
            error = str(exception[-1]).strip()[:_MAX_VALUE_CHARS]
        out.append(
            ActivityRun(
                name=_activity_name(activity),
                type=str(activity.get("type") or "activity"),
                status=_opt_str(run.get("status")),
                start=_epoch(run.get("start")),
                end=_epoch(run.get("end")),
                error=error,
                output=_compact(run.get("output")),
            )
        )
    return tuple(out)


def _activity_name(activity: dict[str, Any]) -> str:
    return str(activity.get("name") or activity.get("ref") or "?")


def _compact(value: Any) -> Any:
    """The value as JSON, or its text cut short when it is large (pod lists, bodies)."""
    text = json.dumps(value, default=str, sort_keys=True)
    if len(text) <= _MAX_VALUE_CHARS:
        return json.loads(text)
    return text[: _MAX_VALUE_CHARS - 1] + "…"


def _epoch(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    # chaoslib writes UTC with an offset; a naive time is read as UTC, never local time.
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)
