"""One frozen options object per command, built by :mod:`loadlab.cli` from the command line."""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from loadlab.app.targets import check_target_url
from loadlab.embedded.agent.config import AGENT_MODES, AgentMode
from loadlab.errors import ConfigError
from loadlab.measure.prom_metrics import check_metrics_port, check_port_free
from loadlab.measure.rundir import check_new_run_dir

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
    snapstart: bool = False
    agent_init: Literal["module", "handler"] = "module"

    def __post_init__(self) -> None:
        _check_count("--replicas", self.replicas, minimum=1)
        _check_positive("--stack-time-scale", self.time_scale)
        _check_count("--provisioned-concurrency", self.provisioned_concurrency, minimum=0)
        if self.agent_mode not in AGENT_MODES:
            raise ConfigError(
                f"--agent-mode {self.agent_mode!r} is not a mode of the embedded agent",
                hint=f"use one of: {', '.join(AGENT_MODES)}",
            )

    @property
    def stack_file(self) -> Path:
        """Where a running stack records itself (``<state dir>/stack.json``)."""
        return self.state_dir / "stack.json"


DEFAULT_WEB_LINGER_S = 60.0
"""How long ``run --web`` keeps the web UI up once the report is written (``--web-linger``)."""
MAX_WEB_LINGER_S = 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """``loadlab run``."""

    scenario: str
    target: str | None = None
    users: int | None = None
    time_scale: float | None = None
    web: bool = False
    web_host: str = "127.0.0.1"
    web_port: int = 8089
    web_linger_s: float = DEFAULT_WEB_LINGER_S
    embedded: bool = False
    run_dir: Path | None = None
    runs_root: Path = Path("runs")
    metrics_port: int = 0
    workers: int = 0
    stack: StackOptions = field(default_factory=StackOptions)

    def __post_init__(self) -> None:
        check_metrics_port(self.metrics_port)
        check_workers(self.workers)
        check_web_host(self.web_host)
        if self.users is not None:
            _check_count("--users", self.users, minimum=1)
        if self.time_scale is not None:
            _check_positive("--time-scale", self.time_scale)
        if not 1 <= self.web_port <= 65535:
            raise ConfigError(
                f"--web-port {self.web_port} out of range", hint="pass a port from 1 to 65535"
            )
        if self.web:
            check_port_free("--web-port", self.web_host, self.web_port, example=8090)
        if not 0 <= self.web_linger_s <= MAX_WEB_LINGER_S:
            raise ConfigError(
                f"--web-linger {self.web_linger_s:g} out of range",
                hint=f"pass seconds from 0 to {MAX_WEB_LINGER_S:g}",
            )
        _check_before_start(self.target, self.run_dir)


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoOptions:
    """``loadlab demo``."""

    scenario: str = "demo.yaml"
    users: int | None = None
    kill_at: float = 0.5
    runs_root: Path = Path("runs")
    metrics_port: int = 0
    stack: StackOptions = field(default_factory=StackOptions)

    def __post_init__(self) -> None:
        check_metrics_port(self.metrics_port)


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

    def __post_init__(self) -> None:
        if self.hypothesis_frequency_s is not None:
            _check_positive("--hypothesis-frequency", self.hypothesis_frequency_s)

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
    metrics_port: int = 0
    workers: int = 0
    stack: StackOptions = field(default_factory=StackOptions)
    chaos: ChaosRunOptions = field(default_factory=ChaosRunOptions)

    def __post_init__(self) -> None:
        check_metrics_port(self.metrics_port)
        check_workers(self.workers)
        _check_before_start(self.target, self.run_dir)

    @property
    def command_module(self) -> str:
        """``plan`` for a game-day plan (YAML), else ``gameday`` (a Chaos Toolkit experiment)."""
        return "plan" if self.experiment.suffix.lower() in (".yaml", ".yml") else "gameday"


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
    more_runs: tuple[Path, ...] = ()
    out: Path | None = None

    @property
    def runs(self) -> tuple[Path, ...]:
        """Every run, in the order given."""
        return (self.run_a, self.run_b, *self.more_runs)


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


# Options are checked when they are built, so a command never starts a stack, a
# process or a run directory for values that cannot work.


def _check_positive(flag: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{flag} {value!r} must be a finite number > 0", hint=f"e.g. {flag} 1.0")


MAX_WORKERS = 64
"""The most Locust workers ``--workers`` starts on one machine."""


def check_workers(workers: int) -> None:
    """``--workers`` is 0 (one Locust process) up to :data:`MAX_WORKERS`."""
    _check_count("--workers", workers, minimum=0)
    if workers > MAX_WORKERS:
        raise ConfigError(
            f"--workers {workers} is more than {MAX_WORKERS}",
            hint="one worker per core is the most that helps; e.g. --workers 2",
        )


def check_web_host(host: str) -> None:
    """``--web-host`` is an IP address this machine can bind (a name would hide what it exposes)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(
            f"--web-host {host!r} is not an IP address",
            hint="use 127.0.0.1 (the default: this machine only), or 0.0.0.0 to expose "
            "the web UI to the network on purpose",
        ) from None


def _check_count(flag: str, value: int, *, minimum: int) -> None:
    if value < minimum:
        raise ConfigError(f"{flag} {value} must be >= {minimum}", hint=f"e.g. {flag} {minimum + 1}")


def _check_before_start(target: str | None, run_dir: Path | None) -> None:
    if target is not None:
        check_target_url(target)
    if run_dir is not None:
        check_new_run_dir(run_dir)
