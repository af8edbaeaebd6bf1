"""Start what a benchmark measures: the canned SSE server and Locust processes.

Locust runs as its own process, exactly as ``loadlab run`` starts it (the
command line comes from :class:`loadlab.load.launch.LocustLaunch`); the
benchmark keeps its pid to read its CPU time from /proc and sends its output
to a log file so that the benchmark's own output stays a readable report.
Every wait is bounded; every process started here is stopped here, by pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import secrets
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml
from _procstat import CpuSample, CpuSampler

from loadlab.load.launch import LocustLaunch

BENCH_DIR = Path(__file__).resolve().parent
SERVER_SCRIPT = BENCH_DIR / "_sse_server.py"


def raise_fd_limit(want: int) -> int:
    """Raise this process's open-file limit towards ``want`` (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def bench_secret() -> str:
    """A JWT secret for a benchmark run (the canned server does not check tokens)."""
    return secrets.token_urlsafe(32)


def write_scenario(path: Path, scenario: Mapping[str, Any]) -> Path:
    """Write a scenario mapping as YAML (validated by Locust's loadlab plugin when it loads it)."""
    path.write_text(yaml.safe_dump(dict(scenario), sort_keys=False))
    return path


@dataclass
class CannedServer:
    """The canned SSE server (bench/_sse_server.py) in ``procs`` processes on one port."""

    stats_dir: Path
    procs: int = 1
    latency_ms: float = 0.0
    tokens: int = 8
    start_timeout_s: float = 20.0
    url: str = ""
    pids: list[int] = field(default_factory=list)
    _proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> CannedServer:
        self.stats_dir.mkdir(parents=True, exist_ok=True)
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(SERVER_SCRIPT),
            "--procs",
            str(self.procs),
            "--latency-ms",
            str(self.latency_ms),
            "--tokens",
            str(self.tokens),
            "--stats-dir",
            str(self.stats_dir),
            stdout=asyncio.subprocess.PIPE,
        )
        assert self._proc.stdout is not None
        try:
            line = await asyncio.wait_for(self._proc.stdout.readline(), self.start_timeout_s)
        except TimeoutError:
            line = b""
        parts = line.decode().split()
        if len(parts) < 3 or parts[0] != "LISTENING":
            await self._stop()
            raise RuntimeError(f"the canned SSE server did not start (got {line!r})")
        self.url = f"http://127.0.0.1:{parts[1]}"
        self.pids = [int(p) for p in parts[2:]]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    async def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout=15)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    def stats(self) -> list[dict[str, Any]]:
        """What each server process wrote when it stopped (call after the ``async with``)."""
        out = []
        for path in sorted(self.stats_dir.glob("server-*.json")):
            with contextlib.suppress(OSError, json.JSONDecodeError):
                out.append(json.loads(path.read_text()))
        return out


@dataclass(frozen=True, slots=True)
class ProcessRun:
    """A finished load-generator process and the CPU samples taken while it ran."""

    returncode: int
    pid: int
    samples: Sequence[CpuSample]
    log_path: Path


async def run_measured(
    cmd: Sequence[str],
    *,
    log_path: Path,
    other_groups: Callable[[], Mapping[str, Sequence[int]]] | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float,
    interval_s: float = 0.5,
    descendants: bool = False,
    on_start: Callable[[int], None] | None = None,
) -> ProcessRun:
    """Run ``cmd`` (group ``load``) with its output in ``log_path``, sampling CPU until it exits.

    ``other_groups`` adds more process groups to every sample (the server, the
    stack). After ``timeout_s`` the process gets SIGINT, then SIGKILL 20 s later.
    ``on_start`` is called with the pid once the process runs (to attach a profiler).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(os.environ if env is None else env),
        )

    def roots() -> Mapping[str, Sequence[int]]:
        groups: dict[str, Sequence[int]] = {"load": [proc.pid]}
        if other_groups is not None:
            groups.update(other_groups())
        return groups

    sampler = CpuSampler(roots=roots, interval_s=interval_s, descendants=descendants)
    sampling = asyncio.create_task(sampler.run(max_s=timeout_s + 60))
    if on_start is not None:
        on_start(proc.pid)
    try:
        try:
            rc = await asyncio.wait_for(proc.wait(), timeout=timeout_s)
        except TimeoutError:
            proc.send_signal(signal.SIGINT)
            try:
                rc = await asyncio.wait_for(proc.wait(), timeout=20)
            except TimeoutError:
                proc.kill()
                rc = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        sampler.stop()
        await sampling
    return ProcessRun(returncode=rc, pid=proc.pid, samples=sampler.samples, log_path=log_path)


async def run_loadlab(
    launch: LocustLaunch,
    *,
    log_path: Path,
    other_groups: Callable[[], Mapping[str, Sequence[int]]] | None = None,
    timeout_s: float,
    interval_s: float = 0.5,
    on_start: Callable[[int], None] | None = None,
) -> ProcessRun:
    """Run loadlab's Locust process for ``launch`` as ``loadlab run`` does, measured.

    The command line and environment are :class:`~loadlab.load.launch.LocustLaunch`'s,
    as for ``loadlab run`` (whose runner cannot be used here: it gives no pid to
    measure and prints Locust's summary into the benchmark's report). The group
    ``load`` counts the Locust process and its children: the recorder's part
    writer process (loadlab.measure.part_writer) is part of loadlab's cost.
    """
    launch.run_dir.mkdir(parents=True, exist_ok=True)
    return await run_measured(
        launch.argv(),
        log_path=log_path,
        other_groups=other_groups,
        env=launch.environment(),
        timeout_s=timeout_s,
        interval_s=interval_s,
        descendants=True,
        on_start=on_start,
    )


def log_tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log, for an error message."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
