"""One frozen options object per command, built by :mod:`loadlab.cli` from the command line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from loadlab.embedded.agent.config import AGENT_MODES, AgentMode

__all__ = [
    "AGENT_MODES",
    "ChaosRunOptions",
    "CompareOptions",
    "CostOptions",
    "DemoOptions",
    "GamedayOptions",
    "ReportOptions",
    "RunOptions",
    "StackOptions",
    "UpOptions",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class StackOptions:
    """How to start the embedded stack (when a command starts one)."""

    replicas: int = 4
    time_scale: float = 1.0
    lambda_function: bool = False
    state_dir: Path = Path(".loadlab")
    agent_mode: AgentMode = "correct"
    provisioned_concurrency: int = 0

    @property
    def stack_file(self) -> Path:
        """Where a running stack records itself (``<state dir>/stack.json``)."""
        return self.state_dir / "stack.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """``loadlab run``."""

    scenario: str
    target: str | None = None
    users: int | None = None
    time_scale: float | None = None
    web: bool = False
    web_port: int = 8089
    embedded: bool = False
    run_dir: Path | None = None
    runs_root: Path = Path("runs")
    stack: StackOptions = field(default_factory=StackOptions)


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoOptions:
    """``loadlab demo``."""

    scenario: str = "demo.yaml"
    users: int | None = None
    kill_at: float = 0.5
    runs_root: Path = Path("runs")
    stack: StackOptions = field(default_factory=StackOptions)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChaosRunOptions:
    """What ``loadlab gameday`` passes on to ``chaos run``."""

    variables: tuple[str, ...] = ()
    var_files: tuple[Path, ...] = ()
    dry: str | None = None
    hypothesis_strategy: str | None = None
    hypothesis_frequency_s: float | None = None
    fail_fast: bool = False
    rollback_strategy: str = "always"

    def argv(self) -> list[str]:
        """The ``chaos run`` options for these settings."""
        args = ["--rollback-strategy", self.rollback_strategy]
        for variable in self.variables:
            args += ["--var", variable]
        for path in self.var_files:
            args += ["--var-file", str(path)]
        if self.dry:
            args += ["--dry", self.dry]
        if self.hypothesis_strategy:
            args += ["--hypothesis-strategy", self.hypothesis_strategy]
        if self.hypothesis_frequency_s is not None:
            args += ["--hypothesis-frequency", f"{self.hypothesis_frequency_s:g}"]
        if self.fail_fast:
            args.append("--fail-fast")
        return args

    def variable(self, key: str) -> str | None:
        """The value a ``--var`` gives configuration ``key``, if one does."""
        for item in reversed(self.variables):
            name, _, value = item.partition("=")
            if name.split(":", 1)[0] == key:
                return value
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class GamedayOptions:
    """``loadlab gameday``."""

    experiment: Path
    scenario: str | None = None
    target: str | None = None
    run_dir: Path | None = None
    runs_root: Path = Path("runs")
    stack: StackOptions = field(default_factory=StackOptions)
    chaos: ChaosRunOptions = field(default_factory=ChaosRunOptions)


@dataclass(frozen=True, slots=True, kw_only=True)
class UpOptions:
    """``loadlab up``."""

    stack: StackOptions = field(default_factory=StackOptions)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportOptions:
    """``loadlab report``."""

    run_dir: Path


@dataclass(frozen=True, slots=True, kw_only=True)
class CompareOptions:
    """``loadlab compare``."""

    run_a: Path
    run_b: Path
    out: Path | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryOptions:
    """``loadlab history``: the trend across game days under ``paths``."""

    paths: tuple[Path, ...]
    out: Path | None = None
    last: int = 5
    tolerance: float = 0.2
    no_fail: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class CostOptions:
    """``loadlab cost``: one run priced on every platform, or a Lambda run and a pods run."""

    runs: tuple[Path, ...]
    prices: Path | None = None
    overrides: tuple[tuple[str, str], ...] = ()
    platform: str | None = None
    json: bool = False
