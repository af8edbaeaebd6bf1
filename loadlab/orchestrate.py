"""Compose a load run: find the target, run Locust with loadlab's locustfile, report.

The load itself always runs in a Locust process (the same code path as
``locust -f loadlab/locustfile.py``): this module only prepares its command
line and environment, supervises it, and renders the report afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loadlab.errors import ConfigError, TargetUnreachable

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
REPO_SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
STACK_STATE = Path(".loadlab") / "stack.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunPlan:
    """Everything one Locust run needs."""

    scenario_path: Path
    target_url: str
    run_dir: Path
    users: int | None = None
    time_scale: float | None = None
    web: bool = False
    web_port: int = 8089
    jwt_secret: str | None = None
    progress_interval_s: float = 5.0
    loglevel: str = "WARNING"
    # Extra environment for the Locust process (pressure sources, the AWS endpoint). When
    # it sets any AWS_* variable, none of this process's own AWS_* settings are passed on:
    # a profile of the user's must not mix a real account into an embedded run.
    env: Mapping[str, str] = field(default_factory=dict)


def resolve_scenario_path(name: str) -> Path:
    """Find a scenario file: as given, else in the repository's scenarios/ folder."""
    path = Path(name)
    if path.is_file():
        return path
    for candidate in (REPO_SCENARIOS / name, REPO_SCENARIOS / f"{name}.yaml"):
        if candidate.is_file():
            return candidate
    known = ", ".join(sorted(p.stem for p in REPO_SCENARIOS.glob("*.yaml")))
    raise ConfigError(
        f"scenario file {name!r} not found",
        hint=f"pass a path to a scenario YAML file, or one of: {known}",
    )


def locust_command(plan: RunPlan) -> list[str]:
    """The Locust command line for ``plan`` (no secrets in it: those go in the environment)."""
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--host",
        plan.target_url,
        "--scenario",
        str(plan.scenario_path),
        "--run-dir",
        str(plan.run_dir),
        "--csv",
        str(plan.run_dir / "locust"),
        "--loglevel",
        plan.loglevel,
        "--progress-interval",
        str(plan.progress_interval_s),
    ]
    if plan.users:
        cmd += ["--peak-users", str(plan.users)]
    if plan.time_scale:
        cmd += ["--time-scale", str(plan.time_scale)]
    if plan.web:
        cmd += ["--web-host", "127.0.0.1", "--web-port", str(plan.web_port)]
    else:
        cmd += ["--headless", "--only-summary"]
    return cmd


async def run_locust(
    plan: RunPlan, *, during: Callable[[], Coroutine[Any, Any, None]] | None = None
) -> int:
    """Run Locust for ``plan`` and wait for it; ``during`` runs alongside (e.g. a fault).

    Ctrl-C is passed on to Locust as SIGINT so it stops its users and the
    recorder flushes; the run directory stays complete up to that moment.
    """
    env = os.environ.copy()
    if any(name.startswith("AWS_") for name in plan.env):
        env = {k: v for k, v in env.items() if not k.startswith("AWS_")}
    env.update(plan.env)
    if plan.jwt_secret:
        env["LOADLAB_JWT_SECRET"] = plan.jwt_secret
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    proc = await asyncio.create_subprocess_exec(*locust_command(plan), env=env)
    if plan.web:
        print(
            f"loadlab: Locust web UI on http://127.0.0.1:{plan.web_port} - press Start there; "
            "Ctrl-C here ends the run and writes the report",
            flush=True,
        )
    side = asyncio.create_task(during()) if during is not None else None
    try:
        return await wait_interruptibly(proc, grace_s=30)
    finally:
        if side is not None:
            side.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await side


async def wait_interruptibly(proc: asyncio.subprocess.Process, *, grace_s: float) -> int:
    """Wait for ``proc``; if this wait is cancelled (Ctrl-C), pass SIGINT on to it.

    The child then gets ``grace_s`` to end cleanly (Locust flushes its recorder,
    Chaos Toolkit runs its rollbacks) before it is killed.
    """
    try:
        return await proc.wait()
    except asyncio.CancelledError:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), timeout=grace_s)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        raise


def check_target(url: str, protocol: str, *, timeout_s: float = 5.0) -> None:
    """Fail fast, with a fix, when the agent endpoint does not answer."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"target URL {url!r} is not an http(s) URL",
            hint="pass --target http://HOST:PORT (the agent's base URL)",
        )
    if protocol == "reference":
        probe = url.rstrip("/") + "/healthz"
        try:
            with urllib.request.urlopen(probe, timeout=timeout_s) as resp:
                if resp.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            raise TargetUnreachable(
                f"the agent at {url} answered {exc.code} on /healthz",
                hint="check that the URL points at the agent (not a gateway) and that it is ready",
            ) from exc
        except (OSError, urllib.error.URLError) as exc:
            raise _unreachable(url, exc) from exc
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s):
            return
    except OSError as exc:
        raise _unreachable(url, exc) from exc


def _unreachable(url: str, exc: BaseException) -> TargetUnreachable:
    reason = getattr(exc, "reason", exc)
    return TargetUnreachable(
        f"cannot reach the target {url} ({reason})",
        hint="start the embedded stack with `loadlab up` (or use `loadlab run --embedded`), "
        "or pass --target with the URL of a running agent",
    )


@dataclass(frozen=True, slots=True)
class StackInfo:
    """What ``loadlab up`` left in .loadlab/stack.json for other commands."""

    agent_url: str
    jwt_secret: str | None
    fleet_url: str | None


def read_stack_state(path: Path = STACK_STATE) -> StackInfo | None:
    """Endpoints (and the JWT secret) of an embedded stack started by ``loadlab up``."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    endpoints = data.get("endpoints", data)
    agent = endpoints.get("agent_url")
    if not isinstance(agent, str):
        return None
    secret = data.get("jwt_secret")
    fleet = endpoints.get("fleet_url")
    return StackInfo(
        agent,
        secret if isinstance(secret, str) else None,
        fleet if isinstance(fleet, str) else None,
    )
