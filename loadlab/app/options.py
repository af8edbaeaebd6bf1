"""One frozen options object per command, built by :mod:`loadlab.cli` from the command line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from loadlab.embedded.agent.config import AGENT_MODES, AgentMode

__all__ = [
    "AGENT_MODES",
    "CompareOptions",
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
class GamedayOptions:
    """``loadlab gameday``."""

    experiment: Path
    scenario: str = "demo.yaml"
    target: str | None = None
    run_dir: Path | None = None
    runs_root: Path = Path("runs")
    stack: StackOptions = field(default_factory=StackOptions)


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
