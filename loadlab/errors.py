"""The errors loadlab shows its users.

Every error the command line prints is a :class:`LoadLabError`: it carries the
process exit code and a message that names the bad value and how to fix it::

    LoadLabError                      exit 1
    ├── ConfigError                   exit 2   bad flag, scenario or config value
    │   └── ScenarioError             exit 2   a scenario file that does not validate
    ├── TargetUnreachable             exit 3   the agent / AWS / Kubernetes endpoint does not answer
    ├── StackError                    exit 4   the embedded stack failed to start or died
    ├── RunDirectoryError             exit 5   a run directory that is missing or unreadable
    ├── VerdictFailed                 exit 6   the run finished and its evidence says "fail"
    │   ├── SLOFailed                 exit 6   an SLO gate was missed
    │   └── HypothesisDeviated        exit 6   an experiment's steady-state hypothesis did not hold
    └── ChildFailed                   exit N   Locust or ``chaos run`` failed with exit code N
                                               (their own code, passed on; 1 when it had none)

``loadlab.cli.main`` prints every one of them the same way (the message, then
``fix:`` and the hint) and returns its ``exit_code``; commands never return
exit codes of their own.
"""

from __future__ import annotations


class LoadLabError(Exception):
    """Root of every error loadlab reports to a user."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\n  fix: {hint}")


class ConfigError(LoadLabError):
    """A flag, environment variable or configuration value is invalid."""

    exit_code = 2


class ScenarioError(ConfigError):
    """A scenario file does not validate; the message names the key and the fix."""


class TargetUnreachable(LoadLabError):
    """The endpoint under test (or a cloud API) cannot be reached."""

    exit_code = 3


class StackError(LoadLabError):
    """The embedded reference stack could not start, or a part of it died."""

    exit_code = 4


class RunDirectoryError(LoadLabError):
    """A run directory is missing, incomplete or unreadable."""

    exit_code = 5


class VerdictFailed(LoadLabError):
    """The run completed, and what it measured fails it."""

    exit_code = 6


class SLOFailed(VerdictFailed):
    """The run completed but one or more SLO gates were missed."""


class HypothesisDeviated(VerdictFailed):
    """The Chaos Toolkit experiment ran, and its steady-state hypothesis did not hold."""


class ChildFailed(LoadLabError):
    """A child process of the run (Locust, ``chaos run``) failed; its exit code is passed on."""

    def __init__(self, message: str, *, exit_code: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code if exit_code > 0 else 1
