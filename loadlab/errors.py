"""The errors loadlab shows its users.

Every error the command line prints is a :class:`LoadLabError`: it carries the
process exit code and a message that names the bad value and how to fix it::

    LoadLabError                      exit 1
    ├── ConfigError                   exit 2   bad flag, scenario or config value
    │   └── ScenarioError             exit 2   a scenario file that does not validate
    ├── TargetUnreachable             exit 3   the agent / AWS / Kubernetes endpoint does not answer
    ├── StackError                    exit 4   the embedded stack failed to start or died
    ├── RunDirectoryError             exit 5   a run directory that is missing or unreadable
    └── SLOFailed                     exit 6   the run finished but missed an SLO gate
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


class SLOFailed(LoadLabError):
    """The run completed but one or more SLO gates were missed."""

    exit_code = 6
