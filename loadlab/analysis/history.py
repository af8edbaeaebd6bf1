"""Runs over time: what each game day measured, and which run got worse than the ones before.

``loadlab history`` reads the ``summary.json`` of every run directory under the
paths it is given (run directories, game-day directories, or a whole ``runs/``
tree), groups the runs by what they tested (the experiment's title, else the
run's name) and orders each group by start time.

A run **regressed** when, against the up-to-``last`` runs of its group before
it (at least one), it is worse than every one of them:

* the verdict went from PASS (the run just before) to FAIL;
* turn P99, resume-latency P99 or time to recover is more than ``tolerance``
  above the worst of those runs;
* more sessions were restarted or duplicated than in any of them.

Nothing here is timed or guessed: every figure is read from summary.json,
which ``loadlab report`` derives from the run's own rows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadlab.errors import ConfigError

__all__ = [
    "FIGURES",
    "GAMEDAY_INDEX",
    "History",
    "HistoryRun",
    "Regression",
    "build_history",
    "find_gameday_dirs",
    "find_run_dirs",
    "gameday_runs_without_summary",
    "read_history_run",
]

GAMEDAY_INDEX = "gameday.json"
"""The index a game-day directory keeps of its runs (``loadlab gameday PLAN.yaml``)."""

MAX_DEPTH = 4
"""How deep below each given path run directories are looked for."""

# (attribute, label, unit, higher-is-worse tolerance applies)
FIGURES: tuple[tuple[str, str, str], ...] = (
    ("turn_p99_ms", "turn P99", "ms"),
    ("ttft_p99_ms", "TTFT P99", "ms"),
    ("resume_p99_ms", "resume P99", "ms"),
    ("restarted", "restarted", "n"),
    ("duplicated", "duplicated", "n"),
    ("time_to_recover_s", "time to recover", "s"),
)
_LATENCY_LIKE = ("turn_p99_ms", "resume_p99_ms", "time_to_recover_s")
_COUNTS = ("restarted", "duplicated")


@dataclass(frozen=True, slots=True)
class HistoryRun:
    """One run's figures, as its summary.json gives them (None: not measured)."""

    path: Path
    key: str
    name: str
    started_at: float
    gameday: str | None
    passed: bool | None
    reasons: tuple[str, ...]
    turn_p99_ms: float | None
    ttft_p99_ms: float | None
    resume_p99_ms: float | None
    restarted: int
    duplicated: int
    failed: int
    time_to_recover_s: float | None

    def figure(self, attribute: str) -> float | None:
        """One of :data:`FIGURES` by attribute name."""
        value = getattr(self, attribute)
        return None if value is None else float(value)


@dataclass(frozen=True, slots=True)
class Regression:
    """A run worse than every one of the runs before it in its group."""

    run: HistoryRun
    baseline: tuple[HistoryRun, ...]
    findings: tuple[str, ...]

    @property
    def line(self) -> str:
        """``<key> @ <run>: turn P99 2,310 ms > worst of last 3 (1,800 ms) + 20 %``."""
        return f"{self.run.key} @ {self.run.path.name}: " + "; ".join(self.findings)


@dataclass(frozen=True, slots=True)
class History:
    """Runs grouped by key (oldest first), the regressions among them, and what was skipped."""

    groups: dict[str, tuple[HistoryRun, ...]]
    regressions: tuple[Regression, ...]
    skipped: tuple[str, ...] = field(default=())
    last: int = 5
    tolerance: float = 0.2

    @property
    def runs(self) -> tuple[HistoryRun, ...]:
        """Every run, oldest first."""
        return tuple(sorted((r for g in self.groups.values() for r in g), key=_order))

    @property
    def gamedays(self) -> tuple[str, ...]:
        """The game days the runs belong to, oldest first."""
        seen: dict[str, None] = {}
        for run in self.runs:
            if run.gameday is not None:
                seen.setdefault(run.gameday, None)
        return tuple(seen)

    def newest_regressed(self) -> tuple[Regression, ...]:
        """Regressions of the newest run of a group: what a scheduled game day acts on."""
        newest = {group[-1].path for group in self.groups.values() if group}
        return tuple(r for r in self.regressions if r.run.path in newest)


def _order(run: HistoryRun) -> tuple[float, str]:
    return (run.started_at, str(run.path))


def find_run_dirs(paths: Iterable[Path], *, max_depth: int = MAX_DEPTH) -> list[Path]:
    """Run directories (those with a manifest.json) at or below ``paths``, without repeats."""
    found: dict[Path, None] = {}
    for root in paths:
        if not root.exists():
            raise ConfigError(
                f"history: {str(root)!r} does not exist",
                hint="pass run directories, game-day directories or a runs/ folder",
            )
        if not root.is_dir():
            raise ConfigError(
                f"history: {str(root)!r} is not a directory",
                hint="pass run directories, game-day directories or a runs/ folder",
            )
        for run_dir in _walk(root, max_depth):
            found.setdefault(run_dir.resolve(), None)
    return list(found)


def _walk(root: Path, depth: int) -> Iterable[Path]:
    if (root / "manifest.json").is_file():
        yield root
        return
    if depth <= 0:
        return
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return
    for child in children:
        yield from _walk(child, depth - 1)


def read_history_run(path: Path) -> HistoryRun:
    """One run's figures from its manifest.json and summary.json.

    Raises :class:`ValueError` naming what is missing when the run has no usable
    summary (never rendered, or unreadable): the caller lists it as skipped.
    """
    manifest = _read_object(path / "manifest.json")
    summary_path = path / "summary.json"
    if not summary_path.is_file():
        raise ValueError(f"{path}: no summary.json (render it with `loadlab report {path}`)")
    summary = _read_object(summary_path)
    run = _dict(summary.get("run"))
    experiment = _dict(summary.get("experiment"))
    title = experiment.get("title")
    name = str(run.get("name") or manifest.get("name") or path.name)
    key = str(title) if isinstance(title, str) and title else name
    started = _number(run.get("started_at"), manifest.get("started_at"))
    if started is None:
        raise ValueError(f"{path}: summary.json has no run.started_at")
    verdict = _dict(summary.get("verdict"))
    passed = verdict.get("passed")
    verdicts = _dict(_dict(summary.get("sessions")).get("verdicts"))
    recover = [
        value
        for impact in summary.get("fault_impact") or []
        if isinstance(impact, dict)
        and (value := _number(impact.get("time_to_recover_s"))) is not None
    ]
    return HistoryRun(
        path=path,
        key=key,
        name=name,
        started_at=started,
        gameday=_gameday_of(path),
        passed=passed if isinstance(passed, bool) else None,
        reasons=tuple(str(r) for r in verdict.get("reasons") or ()),
        turn_p99_ms=_number(_path(summary, "turn_latency_ms", "all", "p99")),
        ttft_p99_ms=_number(_path(summary, "ttft_ms", "all", "p99")),
        resume_p99_ms=_number(_path(summary, "sessions", "resume_latency_ms", "p99")),
        restarted=_count(verdicts.get("restarted")),
        duplicated=_count(verdicts.get("duplicated")),
        failed=_count(verdicts.get("failed")),
        time_to_recover_s=max(recover) if recover else None,
    )


def build_history(paths: Sequence[Path], *, last: int = 5, tolerance: float = 0.2) -> History:
    """Every run under ``paths``, grouped and ordered, with its regressions."""
    if last < 1:
        raise ConfigError(f"history: --last {last} must be at least 1", hint="e.g. --last 5")
    if not math.isfinite(tolerance) or tolerance < 0:
        raise ConfigError(
            f"history: --tolerance {tolerance} must be a finite number >= 0",
            hint="e.g. --tolerance 0.2 (20 % worse than the worst of the last runs)",
        )
    runs: list[HistoryRun] = []
    skipped: list[str] = []
    for run_dir in find_run_dirs(paths):
        try:
            runs.append(read_history_run(run_dir))
        except ValueError as exc:
            skipped.append(str(exc))
    read = {run.path for run in runs}
    for day in find_gameday_dirs(paths):
        for run in gameday_runs_without_summary(day):
            if run.path not in read:
                runs.append(run)
                read.add(run.path)
    groups: dict[str, list[HistoryRun]] = {}
    for run in sorted(runs, key=_order):
        groups.setdefault(run.key, []).append(run)
    regressions = [
        found
        for group in groups.values()
        for index in range(1, len(group))
        if (found := _regression(group[index], group[max(0, index - last) : index], tolerance))
    ]
    return History(
        groups={key: tuple(group) for key, group in sorted(groups.items())},
        regressions=tuple(regressions),
        skipped=tuple(skipped),
        last=last,
        tolerance=tolerance,
    )


def find_gameday_dirs(paths: Iterable[Path], *, max_depth: int = MAX_DEPTH) -> list[Path]:
    """Game-day directories (those with a ``gameday.json``) at or below ``paths``."""
    found: dict[Path, None] = {}

    def walk(folder: Path, depth: int) -> None:
        if (folder / GAMEDAY_INDEX).is_file():
            found.setdefault(folder.resolve(), None)
            return
        if depth <= 0 or (folder / "manifest.json").is_file():
            return
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
        except OSError:
            return
        for child in children:
            walk(child, depth - 1)

    for root in paths:
        if root.is_dir():
            walk(root, max_depth)
    return list(found)


def gameday_runs_without_summary(day: Path) -> list[HistoryRun]:
    """The experiments a game day's index lists whose run left no summary (it failed
    before any load, or was refused): a FAIL in the history all the same."""
    try:
        index = _read_object(day / GAMEDAY_INDEX)
    except ValueError:
        return []
    out: list[HistoryRun] = []
    for entry in index.get("experiments") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("run_dir"), str):
            continue
        path = (day / entry["run_dir"]).resolve()
        if (path / "summary.json").is_file():
            continue
        started = _number(entry.get("started_at"), index.get("started_at"))
        if started is None:
            continue
        code = entry.get("exit_code")
        message = str(entry.get("message") or f"exit {code}")
        out.append(
            HistoryRun(
                path=path,
                key=_experiment_title(entry.get("experiment")),
                name=str(entry["run_dir"]),
                started_at=started,
                gameday=day.name,
                passed=entry.get("passed") is True,
                reasons=(f"no run recorded (exit {code}): {message}",),
                turn_p99_ms=None,
                ttft_p99_ms=None,
                resume_p99_ms=None,
                restarted=0,
                duplicated=0,
                failed=0,
                time_to_recover_s=None,
            )
        )
    return out


def _experiment_title(experiment: object) -> str:
    """The experiment's title (how its rendered runs are grouped), else its file name."""
    if not isinstance(experiment, str):
        return "unknown experiment"
    path = Path(experiment)
    try:
        title = _read_object(path).get("title")
    except ValueError:
        title = None
    return str(title) if isinstance(title, str) and title else path.stem


def _regression(
    run: HistoryRun, baseline: Sequence[HistoryRun], tolerance: float
) -> Regression | None:
    findings: list[str] = []
    if run.passed is False and baseline[-1].passed is True:
        findings.append("verdict PASS -> FAIL")
    labels = {attribute: (label, unit) for attribute, label, unit in FIGURES}
    for attribute in _LATENCY_LIKE:
        value = run.figure(attribute)
        before = [v for r in baseline if (v := r.figure(attribute)) is not None]
        if value is None or not before:
            continue
        worst = max(before)
        if value > worst * (1 + tolerance):
            label, unit = labels[attribute]
            findings.append(
                f"{label} {_fmt(value, unit)} > worst of last {len(baseline)} "
                f"({_fmt(worst, unit)}) + {tolerance:.0%}"
            )
    for attribute in _COUNTS:
        value = run.figure(attribute)
        worst = max(float(getattr(r, attribute)) for r in baseline)
        if value is not None and value > worst:
            label, _ = labels[attribute]
            findings.append(
                f"{label} sessions {value:.0f} > most in last {len(baseline)} ({worst:.0f})"
            )
    if not findings:
        return None
    return Regression(run=run, baseline=tuple(baseline), findings=tuple(findings))


def _fmt(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:,.0f} ms"
    if unit == "s":
        return f"{value:,.1f} s"
    return f"{value:g}"


def _gameday_of(path: Path) -> str | None:
    """The game day a run belongs to: the nearest parent with a game-day index."""
    for parent in (path.parent, path.parent.parent):
        if (parent / GAMEDAY_INDEX).is_file():
            return parent.name
    return None


def _read_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path.parent}: no {path.name}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"{path}: unreadable ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object")
    return data


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _path(data: dict[str, Any], *keys: str) -> Any:
    value: Any = data
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _number(*values: Any) -> float | None:
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value):
            return float(value)
    return None


def _count(value: Any) -> int:
    number = _number(value)
    return int(number) if number is not None else 0
