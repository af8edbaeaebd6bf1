"""Turns per second per core: ShoppingSessionUser vs plain Locust FastHttpUser (vs wrk).

Every variant drives the same canned SSE endpoint (bench/_sse_server.py: meta,
a few tokens, done; no latency, so the load generator is the bottleneck) with
the same number of users and no think time, one after the other, alternating
their order round by round:

* ``ShoppingSessionUser``: loadlab's Locust user through loadlab's locustfile
  and plugin, started with :class:`loadlab.load.launch.LocustLaunch`, with the
  real recorder writing a run directory (the honest cost of a loadlab run);
* ``FastHttpUser``: plain Locust POSTing the same request and reading the
  stream with ``iter_lines`` (bench/_plain_locustfile.py);
* ``wrk`` (if installed): the same POST from C, one thread, as a ceiling.

Efficiency = completed turns / CPU seconds of the load generator process and
its children (user + system, from /proc; loadlab's recorder writes its parquet
parts in a child process), counted over the same window after a warm-up.
The headline is the ratio ShoppingSessionUser / FastHttpUser per round; the
goal is >= 0.8 (issue #12; it was >= 0.5 before).

``--profile`` samples each Locust process of round 1 with py-spy over the
measured window and prints, per variant, the CPU per turn of each function of
loadlab (or of the plain locustfile) with the library code it calls: where a
turn's CPU goes, in microseconds, side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import collections
import contextlib
import os
import re
import resource
import shutil
import signal
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from _launch import (
    BENCH_DIR,
    CannedServer,
    ProcessRun,
    bench_secret,
    log_tail,
    raise_fd_limit,
    run_loadlab,
    run_measured,
    write_scenario,
)
from _procstat import CpuSampler, between, bracket, with_descendants
from _profile import py_spy
from _report import markdown_table, print_header, progress

from loadlab.analysis.rundata import load_run
from loadlab.load.launch import LocustLaunch

PLAIN_LOCUSTFILE = BENCH_DIR / "_plain_locustfile.py"
SHOPPING = "ShoppingSessionUser"
PLAIN = "FastHttpUser"
WRK = "wrk"
GOAL = 0.8
PROFILE_RATE = 200
"""py-spy samples per second with --profile."""


@dataclass(frozen=True, slots=True)
class Measurement:
    """One variant in one round."""

    variant: str
    round: int
    turns: int
    wall_s: float
    cpu_s: float
    server_cpu_s: float
    failures: int
    note: str = ""
    profile: str = ""

    @property
    def turns_per_s(self) -> float:
        """Completed turns per wall-clock second."""
        return self.turns / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def turns_per_cpu_s(self) -> float:
        """Completed turns per CPU second of the load generator (turns/s/core)."""
        return self.turns / self.cpu_s if self.cpu_s > 0 else 0.0

    @property
    def cpu_percent(self) -> float:
        """The load generator's CPU, in percent of one core."""
        return 100.0 * self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def server_cpu_percent(self) -> float:
        """The server's CPU, in percent of one core."""
        return 100.0 * self.server_cpu_s / self.wall_s if self.wall_s > 0 else 0.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see --help)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Example: .venv/bin/python bench/efficiency.py --quick",
    )
    nproc = len(os.sched_getaffinity(0))
    parser.add_argument("--users", type=int, default=50, help="concurrent users (default 50)")
    parser.add_argument(
        "--duration", type=float, default=25.0, help="seconds per Locust run (default 25)"
    )
    parser.add_argument(
        "--warmup", type=float, default=4.0, help="seconds skipped after the first turn (4)"
    )
    parser.add_argument("--rounds", type=int, default=2, help="A/B rounds, order alternated (2)")
    parser.add_argument(
        "--wrk-duration", type=float, default=10.0, help="seconds per wrk run (default 10)"
    )
    parser.add_argument("--no-wrk", action="store_true", help="skip wrk even if installed")
    parser.add_argument(
        "--server-procs",
        type=int,
        default=max(1, min(4, nproc - 1)),
        help="canned server processes on one port (default: nproc - 1, 1..4)",
    )
    parser.add_argument("--tokens", type=int, default=8, help="token events per turn (8)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke mode (~30 s): 1 round, 7 s runs, 2 s warm-up, 4 s wrk",
    )
    parser.add_argument(
        "--sliced",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="run the two Locust variants of a round at the same time, taking turns on the "
        "CPU every SECONDS (the other stopped with SIGSTOP), so both see the machine at the "
        "same speed; --duration is then each variant's measured time (0: one after the "
        "other, the default)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy on each Locust process of round 1: CPU per turn by function "
        "(that round's figures are perturbed)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.rounds, args.wrk_duration = 7.0, 2.0, 1, 4.0
    if args.users < 1 or args.duration <= args.warmup + 1 or args.rounds < 1:
        parser.error("need --users >= 1, --rounds >= 1 and --duration > --warmup + 1")
    if args.sliced and not 0.5 <= args.sliced <= args.duration / 2:
        parser.error(
            f"--sliced must be 0 (off) or between 0.5 and --duration / 2, got {args.sliced:g}"
        )
    if args.sliced and args.profile:
        parser.error("--profile and --sliced do not go together (py-spy reads a stopped process)")
    return args


def efficiency_scenario(users: int, duration_s: float) -> dict[str, object]:
    """A soak of ``users`` shoppers with no think time (a session of N turns then repeats)."""
    return {
        "name": "bench_efficiency",
        "description": "bench/efficiency.py: no think time, fixed user count",
        "seed": 1,
        "time_scale": 1.0,
        "target": {"protocol": "reference", "timeout_s": 10},
        "shape": {"kind": "soak", "users": users, "ramp_s": 1, "duration_s": duration_s},
        "session": {
            "turns": {"min": 4, "max": 10},
            "think_time": {"distribution": "constant", "median_s": 0},
        },
        "retry": {"max_attempts": 2, "backoff_s": 0.1, "backoff_max_s": 0.5},
    }


def _locust_failures(csv_prefix: Path) -> int:
    path = Path(f"{csv_prefix}_stats.csv")
    try:
        stats = pd.read_csv(path)
    except (OSError, ValueError):
        return -1
    total = stats[stats["Name"] == "Aggregated"]
    return int(total["Failure Count"].iloc[0]) if len(total) else -1


def _window_measurement(
    variant: str, rnd: int, run: ProcessRun, completions: list[float], warmup_s: float
) -> Measurement:
    if run.returncode not in (0, 1) or len(completions) < 2:
        raise RuntimeError(
            f"{variant} run failed (exit {run.returncode}, {len(completions)} turns); "
            f"last lines of {run.log_path}:\n{log_tail(run.log_path)}"
        )
    completions.sort()
    pair = bracket(run.samples, completions[0] + warmup_s, completions[-1] - 0.5)
    if pair is None:
        raise RuntimeError(f"{variant}: the run was too short to measure after the warm-up")
    use = between(*pair)
    turns = sum(1 for t in completions if pair[0].t <= t <= pair[1].t)
    return Measurement(
        variant=variant,
        round=rnd,
        turns=turns,
        wall_s=use.wall_s,
        cpu_s=use.groups_s["load"],
        server_cpu_s=use.groups_s.get("server", 0.0),
        failures=0,
    )


async def run_shopping(
    args: argparse.Namespace,
    server: CannedServer,
    work: Path,
    rnd: int,
    slicer: Slicer | None = None,
) -> Measurement:
    """ShoppingSessionUser through loadlab's locustfile, plugin and recorder."""
    duration = args.duration if slicer is None else slicer.run_time_s
    scenario = write_scenario(work / "efficiency.yaml", efficiency_scenario(args.users, duration))
    run_dir = work / f"round{rnd}-shopping"
    plan = LocustLaunch(
        scenario_path=scenario,
        target_url=server.url,
        run_dir=run_dir,
        jwt_secret=bench_secret(),
        progress_interval_s=0,
    )
    spy = _Profiler(args, work / f"round{rnd}-shopping.pyspy", enabled=rnd == 1)
    run = await run_loadlab(
        plan,
        log_path=work / f"round{rnd}-shopping.log",
        other_groups=lambda: {"server": server.pids},
        timeout_s=duration + 60,
        on_start=spy.attach if slicer is None else slicer.attach(SHOPPING),
    )
    await spy.done()
    data = load_run(run_dir)
    ok = data.turns[data.turns["ok"]]
    if slicer is None:
        m = _window_measurement(SHOPPING, rnd, run, ok["t_end"].tolist(), args.warmup)
    else:
        m = slicer.measurement(SHOPPING, rnd, run, ok["t_end"].tolist())
    verdicts = data.sessions["verdict"].value_counts().to_dict()
    note = "sessions " + ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items()))
    failures = int((~data.turns["ok"]).sum())
    profile = spy.summary(m.turns_per_cpu_s)
    return Measurement(**{**_fields(m), "failures": failures, "note": note, "profile": profile})


async def run_plain(
    args: argparse.Namespace,
    server: CannedServer,
    work: Path,
    rnd: int,
    slicer: Slicer | None = None,
) -> Measurement:
    """Plain Locust FastHttpUser doing the same POST and reading the stream."""
    duration = args.duration if slicer is None else slicer.run_time_s
    completions = work / f"round{rnd}-plain.times"
    csv = work / f"round{rnd}-plain" / "locust"
    csv.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(PLAIN_LOCUSTFILE),
        "--host",
        server.url,
        "--csv",
        str(csv),
        "--loglevel",
        "WARNING",
        "--headless",
        "--only-summary",
        "--users",
        str(args.users),
        "--spawn-rate",
        str(args.users),
        "--run-time",
        f"{duration:g}s",
        "--completions-file",
        str(completions),
    ]
    spy = _Profiler(args, work / f"round{rnd}-plain.pyspy", enabled=rnd == 1)
    run = await run_measured(
        cmd,
        log_path=work / f"round{rnd}-plain.log",
        other_groups=lambda: {"server": server.pids},
        timeout_s=duration + 60,
        on_start=spy.attach if slicer is None else slicer.attach(PLAIN),
    )
    await spy.done()
    times = [float(x) for x in completions.read_text().split()] if completions.exists() else []
    if slicer is None:
        m = _window_measurement(PLAIN, rnd, run, times, args.warmup)
    else:
        m = slicer.measurement(PLAIN, rnd, run, times)
    profile = spy.summary(m.turns_per_cpu_s)
    return Measurement(**{**_fields(m), "failures": _locust_failures(csv), "profile": profile})


class Slicer:
    """The two Locust runs of a round at the same time, taking turns on the CPU (``--sliced``).

    This machine's speed moves from second to second; two runs one after the
    other each see a different machine, and their ratio moves by +/- 0.1 between
    rounds of identical code. Here both run at once: once each has warmed up,
    one is stopped (SIGSTOP, with its children: the recorder's part writer)
    while the other is measured for ``slice_s``, then they swap, for
    ``slices`` slices each, in the order A B B A A B ... Each variant's CPU and
    turns are counted over its own slices only (from ``SETTLE_S`` after it was
    resumed), so both are measured on the same stretch of the machine's time.
    A turn in flight when its process is stopped ends late, not failed (the
    turn timeout, 10 s, is longer than a slice).
    """

    SETTLE_S = 0.25

    def __init__(self, args: argparse.Namespace, server: CannedServer) -> None:
        self.slice_s = float(args.sliced)
        self.slices = max(1, round(args.duration / self.slice_s))
        # Locust's start-up (imports, the recorder's child) and the warm-up, both running.
        self.start_after_s = args.warmup + 4.0
        self.run_time_s = (
            self.start_after_s + 2 * self.slices * (self.slice_s + self.SETTLE_S) + 6.0
        )
        self._pids: dict[str, int] = {}
        self._both = asyncio.Event()
        # Each variant's process with its children, and the server: sampled at the slices'
        # edges, counting a process that starts or ends within a slice as _procstat does.
        self._sampler = CpuSampler(
            roots=lambda: {**{v: [pid] for v, pid in self._pids.items()}, "server": server.pids},
            descendants=True,
        )
        # Per variant: (start, end, CPU s of the variant, CPU s of the server) of each slice.
        self.windows: dict[str, list[tuple[float, float, float, float]]] = {
            SHOPPING: [],
            PLAIN: [],
        }

    def attach(self, variant: str) -> Callable[[int], None]:
        """The ``on_start`` of one variant's run: its pid."""

        def started(pid: int) -> None:
            self._pids[variant] = pid
            if len(self._pids) == len(self.windows):
                self._both.set()

        return started

    async def run(self) -> None:
        """Alternate the two runs, measuring each over its own slices."""
        await asyncio.wait_for(self._both.wait(), timeout=60)
        await asyncio.sleep(self.start_after_s)
        try:
            for k in range(2 * self.slices):
                # A B B A A B B A ...: a trend across the round falls on both alike
                active = SHOPPING if (k + k // 2) % 2 == 0 else PLAIN
                idle = PLAIN if active == SHOPPING else SHOPPING
                _signal_tree(self._pids[idle], signal.SIGSTOP)
                _signal_tree(self._pids[active], signal.SIGCONT)
                await asyncio.sleep(self.SETTLE_S)
                start = self._sampler.sample()
                await asyncio.sleep(self.slice_s)
                end = self._sampler.sample()
                use = between(start, end).groups_s
                self.windows[active].append((start.t, end.t, use[active], use["server"]))
        finally:
            for pid in self._pids.values():
                _signal_tree(pid, signal.SIGCONT)
        progress(f"sliced: {self.slices} slices of {self.slice_s:g} s each, alternated")

    def measurement(
        self, variant: str, rnd: int, run: ProcessRun, completions: list[float]
    ) -> Measurement:
        """The variant's turns and CPU over its own slices."""
        windows = self.windows[variant]
        if run.returncode not in (0, 1) or not windows:
            raise RuntimeError(
                f"{variant} run failed (exit {run.returncode}, {len(windows)} slices measured); "
                f"last lines of {run.log_path}:\n{log_tail(run.log_path)}"
            )
        ends = sorted(completions)
        turns = sum(
            bisect.bisect_right(ends, t1) - bisect.bisect_left(ends, t0) for t0, t1, _, _ in windows
        )
        return Measurement(
            variant=variant,
            round=rnd,
            turns=turns,
            wall_s=sum(t1 - t0 for t0, t1, _, _ in windows),
            cpu_s=sum(w[2] for w in windows),
            server_cpu_s=sum(w[3] for w in windows),
            failures=0,
        )


def _signal_tree(pid: int, sig: signal.Signals) -> None:
    """``sig`` to ``pid`` and every process below it (those that are gone are skipped)."""
    for each in with_descendants([pid]):
        with contextlib.suppress(ProcessLookupError):
            os.kill(each, sig)


class _Profiler:
    """py-spy on one Locust process over the measured part of its run (``--profile``).

    It never pauses the process (``--nonblocking``) and keeps busy samples only, so
    each sample is CPU time of the process (all its threads: the recorder's writes
    run in real threads).
    """

    def __init__(self, args: argparse.Namespace, out: Path, *, enabled: bool) -> None:
        self._args = args
        self._out = out
        self._enabled = enabled and args.profile
        self._task: asyncio.Task[None] | None = None

    def attach(self, pid: int) -> None:
        """Start sampling ``pid`` once the warm-up is over (``on_start`` of a run)."""
        if self._enabled:
            self._task = asyncio.create_task(self._record(pid))

    async def _record(self, pid: int) -> None:
        # Locust's start-up (imports, the recorder's first write) takes a couple of seconds.
        await py_spy(
            pid,
            start_after_s=self._args.warmup + 2.0,
            duration_s=max(1, int(self._args.duration - self._args.warmup - 3.0)),
            out=self._out,
            rate=PROFILE_RATE,
            idle=False,
        )

    async def done(self) -> None:
        """Wait for py-spy to finish (it stops on its own when the process exits)."""
        if self._task is not None:
            await self._task

    def summary(self, turns_per_cpu_s: float, top: int = 24) -> str:
        """CPU per turn by function, from the samples (empty without --profile)."""
        if not self._enabled:
            return ""
        if not self._out.exists():
            return "py-spy: no output (is ptrace allowed? run as root or with CAP_SYS_PTRACE)"
        return profile_table(self._out.read_text(), turns_per_cpu_s, top=top)


def profile_table(raw: str, turns_per_cpu_s: float, *, top: int = 24) -> str:
    """py-spy raw stacks as CPU microseconds per turn, by the innermost function of ours.

    Each sample goes to the innermost frame of loadlab (or of the plain locustfile):
    that function's own code and every library call it makes (the HTTP client
    under the transport, ``json`` under the payload parsers). A sample with no
    such frame goes to the library its innermost frame belongs to (Locust's
    scheduling, gevent's hub). Shares of samples times the CPU a turn costs
    (1 / turns per CPU-second) give microseconds per turn.
    """
    where: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        total += int(count)
        where[_owner(frames)] += int(count)
    if not total or turns_per_cpu_s <= 0:
        return "py-spy: no samples"
    per_turn = 1e6 / turns_per_cpu_s
    lines = [
        f"{total} samples, {per_turn:.0f} us of CPU per turn; by function (and what it calls):"
    ]
    shown = 0.0
    for name, n in where.most_common(top):
        share = n / total
        shown += share
        lines.append(f"  {share * per_turn:6.1f} us  {share:5.1%}  {name}")
    rest = max(0.0, 1.0 - shown)
    lines.append(f"  {rest * per_turn:6.1f} us  {rest:5.1%}  (the rest)")
    return "\n".join(lines)


def _owner(frames: list[str]) -> str:
    # a frame reads "function (path/to/file.py:line)"
    for frame in reversed(frames):
        name, _, place = frame.rpartition(" (")
        path = place.rpartition(":")[0]
        if path.startswith("loadlab/") or path.endswith("_plain_locustfile.py"):
            return f"{name} ({path.rsplit('/', 1)[-1]})"
    path = frames[-1].rpartition(" (")[2].rpartition(":")[0]
    return f"[{path.split('/')[0] if '/' in path else path.removesuffix('.py') or '?'}]"


_WRK_REQUESTS = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b")
_WRK_ERRORS = re.compile(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)")


async def run_wrk(
    args: argparse.Namespace, server: CannedServer, work: Path, rnd: int
) -> Measurement:
    """wrk, one thread, the same POST (every request replays turn 1 of one session)."""
    script = work / "turn.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.body = \'{"turn": 1, "message": "Show me what is on sale today"}\'\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        'wrk.headers["Accept"] = "text/event-stream"\n'
        'wrk.headers["Idempotency-Key"] = "wrk-000001-t1"\n'
        'wrk.headers["Authorization"] = "Bearer eyJhbGciOiJIUzI1NiJ9.bench.bench"\n'
    )
    wrk = shutil.which("wrk") or "wrk"
    cmd = [
        wrk,
        "-t1",
        f"-c{args.users}",
        f"-d{args.wrk_duration:g}s",
        "-s",
        str(script),
        f"{server.url}/v1/sessions/wrk-000001/turns",
    ]
    # wrk's whole life is the measurement: its CPU comes from the kernel's
    # accounting of reaped children (exact), not from /proc samples.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = await run_measured(
        cmd,
        log_path=work / f"round{rnd}-wrk.log",
        other_groups=lambda: {"server": server.pids},
        timeout_s=args.wrk_duration + 30,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = run.log_path.read_text(errors="replace")
    match = _WRK_REQUESTS.search(out)
    if run.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed (exit {run.returncode}):\n{log_tail(run.log_path)}")
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[match.group(3)]
    errors = 0
    for m in _WRK_ERRORS.finditer(out):
        if m.group(1):
            errors += int(m.group(1))
        else:
            errors += sum(int(n) for n in re.findall(r"\d+", m.group(2)))
    server_use = between(run.samples[0], run.samples[-1])
    return Measurement(
        variant=WRK,
        round=rnd,
        turns=int(match.group(1)),
        wall_s=float(match.group(2)) * scale,
        cpu_s=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        server_cpu_s=server_use.groups_s.get("server", 0.0),
        failures=errors,
        note="replays turn 1 of one session; C, one thread",
    )


def _fields(m: Measurement) -> dict[str, object]:
    return {f: getattr(m, f) for f in Measurement.__dataclass_fields__}


RUNNERS = {SHOPPING: run_shopping, PLAIN: run_plain, WRK: run_wrk}


async def measure(args: argparse.Namespace, work: Path) -> list[Measurement]:
    """Every variant, every round, order rotated each round."""
    variants = [SHOPPING, PLAIN]
    if not args.no_wrk and shutil.which("wrk"):
        variants.append(WRK)
    results: list[Measurement] = []
    async with CannedServer(
        stats_dir=work / "server", procs=args.server_procs, tokens=args.tokens
    ) as server:
        progress(f"canned SSE server at {server.url} ({args.server_procs} process(es))")
        for rnd in range(1, args.rounds + 1):
            if args.sliced:
                progress(f"round {rnd}: {SHOPPING} and {PLAIN}, sliced ...")
                slicer = Slicer(args, server)
                shopping, plain, _ = await asyncio.gather(
                    run_shopping(args, server, work, rnd, slicer),
                    run_plain(args, server, work, rnd, slicer),
                    slicer.run(),
                )
                results += [shopping, plain]
                for m in (shopping, plain):
                    progress(
                        f"round {rnd}: {m.variant}: {m.turns_per_cpu_s:,.0f} turns/CPU-s "
                        f"over {m.wall_s:.0f} s of slices"
                    )
            shift = (rnd - 1) % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                if args.sliced and variant != WRK:
                    continue
                progress(f"round {rnd}: {variant} ...")
                m = await RUNNERS[variant](args, server, work, rnd)
                progress(
                    f"round {rnd}: {variant}: {m.turns_per_s:,.0f} turns/s at "
                    f"{m.cpu_percent:.0f}% of a core -> {m.turns_per_cpu_s:,.0f} turns/CPU-s"
                )
                results.append(m)
    return results


def report(args: argparse.Namespace, results: list[Measurement]) -> None:
    """Print the table and the headline ratio."""
    by_variant: dict[str, list[Measurement]] = {}
    for m in results:
        by_variant.setdefault(m.variant, []).append(m)
    plain_eff = statistics.median(m.turns_per_cpu_s for m in by_variant[PLAIN])
    rows = []
    for variant, ms in by_variant.items():
        eff = statistics.median(m.turns_per_cpu_s for m in ms)
        rows.append(
            [
                variant,
                statistics.median(m.turns_per_s for m in ms),
                statistics.median(m.cpu_percent for m in ms),
                eff,
                statistics.median(m.server_cpu_percent for m in ms),
                sum(m.failures for m in ms),
                f"{eff / plain_eff:.2f}x" if plain_eff else "-",
            ]
        )
    timing = (
        f"both at once, measured in turns of {args.sliced:g} s ({args.duration:g} s each)"
        if args.sliced
        else f"{args.duration:g} s runs ({args.warmup:g} s warm-up skipped)"
    )
    print(f"## Efficiency: {args.users} users, no think time, {timing}, {args.rounds} round(s)\n")
    print(
        markdown_table(
            [
                "load generator",
                "turns/s",
                "generator CPU % of a core",
                "turns/s/core (turns per CPU-s)",
                "server CPU % of a core",
                "failed turns",
                "vs FastHttpUser",
            ],
            rows,
        )
    )
    if WRK not in by_variant:
        print("\nwrk: not installed (apt-get install -y wrk) or --no-wrk; column skipped")
    ratios = []
    print("\nper round (side by side):")
    for rnd in range(1, args.rounds + 1):
        a = next(m for m in results if m.round == rnd and m.variant == SHOPPING)
        b = next(m for m in results if m.round == rnd and m.variant == PLAIN)
        ratio = a.turns_per_cpu_s / b.turns_per_cpu_s if b.turns_per_cpu_s else 0.0
        ratios.append(ratio)
        print(
            f"  round {rnd}: {SHOPPING} {a.turns_per_cpu_s:,.0f} vs {PLAIN} "
            f"{b.turns_per_cpu_s:,.0f} turns/CPU-s -> {ratio:.2f}x   ({a.note})"
        )
    headline = statistics.median(ratios)
    verdict = "meets" if headline >= GOAL else "MISSES"
    print(
        f"\nratio {SHOPPING} / {PLAIN} (turns per CPU-second, median of rounds): "
        f"{headline:.2f}x -- {verdict} the goal of >= {GOAL}x"
    )
    for m in results:
        if m.profile:
            print(f"\n### Profile of {m.variant}, round {m.round} (--profile)\n\n{m.profile}")
    busy = [m for m in results if m.server_cpu_percent >= 90.0 * args.server_procs]
    if busy:
        names = ", ".join(sorted({m.variant for m in busy}))
        print(
            f"note: the server was CPU-bound during {names}; turns per CPU-second of the "
            "generator stays comparable, turns/s does not"
        )


async def amain(args: argparse.Namespace) -> int:
    """Run the benchmark in a work directory; keep it with --keep."""
    raise_fd_limit(max(4096, args.users * 4))
    print_header(
        "bench/efficiency.py",
        {
            "users": args.users,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rounds": args.rounds,
            "wrk_duration_s": args.wrk_duration,
            "server_procs": args.server_procs,
            "tokens": args.tokens,
            "recorder": "real RunRecorder (run directory in a temp dir)",
        },
    )
    work = Path(tempfile.mkdtemp(prefix="loadlab-bench-efficiency-"))
    try:
        results = await measure(args, work)
        report(args, results)
    finally:
        if args.keep:
            print(f"\nwork directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    return asyncio.run(amain(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
