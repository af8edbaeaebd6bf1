"""Start a Locust process for a load run: its command line, its environment, the process.

Every load loadlab sends runs in a Locust process started from here, with
loadlab's locustfile (``loadlab/app/locustfile.py``, or
``loadlab/app/lambda_locustfile.py`` when the turns go through the Lambda
Invoke API): ``loadlab run``/``demo`` wait for it (:func:`run_locust`), the
Chaos Toolkit action ``start_load`` leaves it running in the background of an
experiment (:func:`start_locust`), and the benchmarks time it. Secrets never go
on the command line (it is visible to every user of the machine): the JWT
secret travels in the environment.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from loadlab.orphans import die_with_parent

WORKERS_MAX_WAIT_S = 60.0
"""How long a master waits for its workers to connect before it gives up (exit 1)."""

# The locustfiles live in the wiring package; this layer names them by path only.
_APP = Path(__file__).resolve().parents[1] / "app"
LOCUSTFILE = _APP / "locustfile.py"
LAMBDA_LOCUSTFILE = _APP / "lambda_locustfile.py"


@dataclass(frozen=True, slots=True, kw_only=True)
class LocustLaunch:
    """Everything one Locust process of a load run needs.

    ``target_url`` is the agent's base URL, or the Lambda API endpoint when
    ``lambda_function`` names the function the turns invoke. ``env`` is added to
    the parent's environment; when it sets any ``AWS_*`` variable, none of the
    parent's own ``AWS_*`` settings are passed on (a profile of the user's must
    not mix a real account into an embedded run).
    """

    scenario_path: Path
    target_url: str
    run_dir: Path
    lambda_function: str | None = None
    users: int | None = None
    time_scale: float | None = None
    web: bool = False
    web_host: str = "127.0.0.1"
    web_port: int = 8089
    # with the web UI: Locust seals the run when the load stops and serves the UI until
    # SIGINT, so `loadlab run` writes the report while the UI links to it
    serve_until_interrupted: bool = False
    metrics_port: int = 0
    workers: int = 0
    master_port: int = 5557
    jwt_secret: str | None = field(default=None, repr=False)
    progress_interval_s: float = 5.0
    loglevel: str = "WARNING"
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def locustfile(self) -> Path:
        """The locustfile for this target (HTTP users, or Lambda users)."""
        return LAMBDA_LOCUSTFILE if self.lambda_function else LOCUSTFILE

    def argv(self) -> list[str]:
        """The Locust command line (no secrets in it: those go in the environment)."""
        cmd = [
            sys.executable, "-m", "locust", "-f", str(self.locustfile),
            "--host", self.target_url,
            "--scenario", str(self.scenario_path),
            "--run-dir", str(self.run_dir),
            "--csv", str(self.run_dir / "locust"),
            "--loglevel", self.loglevel,
            "--progress-interval", f"{self.progress_interval_s:g}",
        ]  # fmt: skip
        if self.lambda_function:
            cmd += ["--lambda-function", self.lambda_function]
        if self.users:
            cmd += ["--peak-users", str(self.users)]
        if self.time_scale:
            cmd += ["--time-scale", str(self.time_scale)]
        if self.metrics_port:
            cmd += ["--metrics-port", str(self.metrics_port)]
        if self.web:
            cmd += ["--web-host", self.web_host, "--web-port", str(self.web_port)]
            if self.serve_until_interrupted:
                cmd.append("--serve-until-interrupted")
        else:
            cmd += ["--headless", "--only-summary"]
        if self.workers:
            cmd += [
                "--master",
                "--expect-workers", str(self.workers),
                "--expect-workers-max-wait", f"{WORKERS_MAX_WAIT_S:g}",
                "--master-bind-host", "127.0.0.1",
                "--master-bind-port", str(self.master_port),
            ]  # fmt: skip
        return cmd

    def worker_argv(self, index: int) -> list[str]:
        """The command line of worker ``index`` (0-based) of a ``workers`` run.

        A worker runs the same locustfile and scenario, takes its users and the
        shape's ticks from the master, and forwards its rows to it: the master
        writes the one run directory.
        """
        cmd = [
            sys.executable, "-m", "locust", "-f", str(self.locustfile),
            "--worker",
            "--master-host", "127.0.0.1",
            "--master-port", str(self.master_port),
            "--scenario", str(self.scenario_path),
            "--loglevel", self.loglevel,
        ]  # fmt: skip
        if self.lambda_function:
            cmd += ["--lambda-function", self.lambda_function]
        if self.time_scale:
            cmd += ["--time-scale", str(self.time_scale)]
        return cmd

    def environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The Locust process's environment: ``base`` (default ``os.environ``) plus ours."""
        env = dict(os.environ if base is None else base)
        if any(name.startswith("AWS_") for name in self.env):
            env = {k: v for k, v in env.items() if not k.startswith("AWS_")}
        env.update(self.env)
        if self.jwt_secret:
            env["LOADLAB_JWT_SECRET"] = self.jwt_secret
        return env


async def run_locust(launch: LocustLaunch) -> asyncio.subprocess.Process:
    """Start Locust for ``launch`` as a child of this event loop (its output is ours).

    It leads its own process group (a terminal's Ctrl-C goes to loadlab only, which
    passes on one SIGINT) and is SIGKILLed if this process dies.
    """
    launch.run_dir.mkdir(parents=True, exist_ok=True)
    return await asyncio.create_subprocess_exec(
        *launch.argv(),
        env=launch.environment(),
        stdin=asyncio.subprocess.DEVNULL,
        preexec_fn=die_with_parent(),
        start_new_session=True,
    )


async def run_workers(launch: LocustLaunch) -> list[asyncio.subprocess.Process]:
    """Start ``launch.workers`` worker processes for the master :func:`run_locust` started.

    Each leads a process group of its own, as the master does (a terminal's
    Ctrl-C reaches loadlab only; the master tells its workers to quit), and is
    SIGKILLed if this process dies.
    """
    return [
        await asyncio.create_subprocess_exec(
            *launch.worker_argv(index),
            env=launch.environment(),
            stdin=asyncio.subprocess.DEVNULL,
            preexec_fn=die_with_parent(),
            start_new_session=True,
        )
        for index in range(launch.workers)
    ]


def start_locust(launch: LocustLaunch, log: IO[bytes]) -> subprocess.Popen[bytes]:
    """Start Locust for ``launch`` in the background, its output going to ``log``.

    It is SIGKILLed when the calling thread's process dies (a ``chaos run`` killed
    with its experiment half done stops sending load too).
    """
    launch.run_dir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        launch.argv(),
        env=launch.environment(),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent(),  # noqa: PLW1509 (prctl only; libc found before fork)
        start_new_session=True,
    )


def start_workers(launch: LocustLaunch, log: IO[bytes]) -> list[subprocess.Popen[bytes]]:
    """Start ``launch.workers`` workers in the background for a master :func:`start_locust`
    started; each is SIGKILLed when the calling thread's process dies."""
    return [
        subprocess.Popen(
            launch.worker_argv(index),
            env=launch.environment(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent(),  # noqa: PLW1509 (prctl only; libc found before fork)
            start_new_session=True,
        )
        for index in range(launch.workers)
    ]
