"""What the web UI's loadlab tab costs: harness CPU per turn with the tab watched, and without.

Issue 10's budget: the tab and the metrics endpoint add no more than 2 % to the
harness's CPU per turn at 1,000 sessions. Three variants drive the same canned SSE server
(bench/_sse_server.py, fixed ``--latency-ms``) with the same soak of
``--sessions`` shoppers thinking ~``--think-s`` between turns, through loadlab's
Locust process as ``loadlab run`` starts it
(:class:`loadlab.load.launch.LocustLaunch`, the real recorder), **at the same
time** in each round (``--apart``: one after the other, order alternated):

* ``off``: headless (no web UI, no tab);
* ``web``: Locust's own web UI without the loadlab tab and without the metrics
  endpoint (bench/_locust_ui_only.py), started and polled as ``on`` is;
* ``on``: ``--web`` and ``--metrics-port``, started with Locust's own
  ``POST /swarm``, watched as a browser watches it: ``GET /stats/requests``
  (which carries the tab's ``extended_stats``) every ``--poll-s`` seconds from
  each of ``--viewers`` pollers, and scraped as Prometheus scrapes it
  (``GET /metrics`` every ``--scrape-s`` seconds), the whole run long.

In each, one fault with a lease is written to ``events.jsonl`` at the start of the
hold (as the chaos control writes it), so the ``on`` run also pays for reading
the faults and, 30 s after the lease ends, computing its impact line once.

CPU per turn = CPU seconds of the Locust process (user + system, /proc) over the
hold after one think time of settling / turns that started in that window. The
headline is ``on / web - 1`` per round and its median over the rounds: what the
tab and the metrics endpoint add, Locust's UI (its serving, its statistics cache
for the current percentiles) paid on both sides. ``on / off - 1`` is printed too:
the web UI, the tab and the endpoint together (``--no-web-baseline`` runs only
these two). Run one
after the other, two identical headless runs on this shared machine differ by up
to +-18 % (bench/RESULTS.md), far more than the 2 % budget; run side by side,
the variants see the same machine (the same neighbours, the same clock speed),
so what differs between them is what the variants do.

Run it on a quiet machine, alone (see bench/README.md); ``--quick`` is a smoke run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from _launch import CannedServer, bench_secret, log_tail, raise_fd_limit, run_loadlab
from _procstat import between, bracket
from _profile import busy_stack, py_spy, py_spy_summary
from _report import markdown_table, print_header, progress
from _runwindow import test_start, turns_started

from loadlab.analysis.rundata import load_run
from loadlab.load.launch import LocustLaunch
from loadlab.rows import TimelineEvent, append_lines, event_line

GOAL_OVERHEAD = 0.02
OFF, WEB, ON = "off", "web", "on"
UI_ONLY = Path(__file__).with_name("_locust_ui_only.py")


class _UiOnlyLaunch(LocustLaunch):
    """``loadlab run --web``'s Locust process without the loadlab tab (``web``)."""

    @property
    def locustfile(self) -> Path:
        return UI_ONLY


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see --help)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Example: .venv/bin/python bench/web_tab_overhead.py --quick",
    )
    parser.add_argument("--sessions", type=int, default=1000, help="concurrent sessions (1000)")
    parser.add_argument(
        "--latency-ms", type=float, default=200.0, help="server latency per turn (200)"
    )
    parser.add_argument(
        "--think-s", type=float, default=5.0, help="mean think time, uniform +-1 s (5)"
    )
    parser.add_argument("--spawn-rate", type=float, default=200.0, help="sessions/s ramp (200)")
    parser.add_argument("--hold", type=float, default=75.0, help="seconds held at peak (75)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the variants (5)")
    parser.add_argument(
        "--apart",
        action="store_true",
        help="run the variants one after the other (order alternated), not side by side",
    )
    parser.add_argument("--poll-s", type=float, default=2.0, help="browser poll interval (2)")
    parser.add_argument("--viewers", type=int, default=1, help="browsers watching the tab (1)")
    parser.add_argument(
        "--scrape-s",
        type=float,
        default=5.0,
        help="metrics scrape interval (5 s, as dashboards/prometheus.yml scrapes)",
    )
    parser.add_argument(
        "--no-web-baseline",
        dest="web_baseline",
        action="store_false",
        help="leave out the `web` variant (Locust's web UI, polled the same, without the "
        "loadlab tab and metrics endpoint): off/on pairs only",
    )
    parser.add_argument("--lease-s", type=float, default=15.0, help="the fault's lease (15)")
    parser.add_argument(
        "--quick", action="store_true", help="smoke mode (~2 min): 200 sessions, 1 round"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy on each process over the window (pausing it at each sample, so that "
        "stacks are whole): the share of their busy samples in the tab, the metrics endpoint "
        "and Locust's web UI (the profiler perturbs CPU)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    if args.quick:
        args.sessions, args.hold, args.rounds = 200, 45.0, 1
    if (
        args.sessions < 1
        or args.rounds < 1
        or args.viewers < 1
        or args.poll_s <= 0
        or args.scrape_s <= 0
        or args.think_s < 1
        or args.spawn_rate <= 0
    ):
        parser.error(
            "need --sessions, --rounds, --viewers >= 1, --poll-s > 0, --think-s >= 1, "
            "--spawn-rate > 0"
        )
    args.ramp = max(1.0, args.sessions / args.spawn_rate)
    args.settle = args.think_s + 1.0 + 2 * args.latency_ms / 1000.0
    if args.hold <= args.settle + 5:
        parser.error(f"--hold must exceed the settling time ({args.settle:g} s) by 5 s")
    return args


def soak_scenario(args: argparse.Namespace) -> dict[str, object]:
    """``--sessions`` shoppers ramped at ``--spawn-rate`` and held, thinking ~``--think-s``."""
    return {
        "name": "bench_web_tab",
        "description": "bench/web_tab_overhead.py: the loadlab tab watched vs headless",
        "seed": 1000,
        "time_scale": 1.0,
        "target": {"protocol": "reference", "timeout_s": 30},
        "shape": {
            "kind": "soak",
            "users": args.sessions,
            "ramp_s": args.ramp,
            "duration_s": args.ramp + args.hold,
        },
        "session": {
            "turns": {"min": 4, "max": 10},
            "think_time": {
                "distribution": "uniform",
                "min_s": args.think_s - 1.0,
                "max_s": args.think_s + 1.0,
            },
        },
        "retry": {"max_attempts": 2, "backoff_s": 0.5, "backoff_max_s": 2},
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _http(url: str, data: bytes | None = None) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as answer:
        body: bytes = answer.read()
        return body


async def _watch(
    base: str, stop: asyncio.Event, poll_s: float, polls: list[int], *, tab: bool
) -> None:
    """Start the test from the UI, then poll /stats/requests as a browser does.

    A poll counts if it answered (and, with ``tab``, carried the loadlab tab's figures).
    """
    deadline = time.monotonic() + 60
    while not stop.is_set():  # the UI comes up once Locust has started
        try:
            await asyncio.to_thread(_http, base + "/")
            break
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"Locust's web UI at {base} did not come up") from None
            await asyncio.sleep(0.2)
    await asyncio.to_thread(_http, base + "/swarm", b"user_count=1&spawn_rate=1")
    while not stop.is_set():
        with contextlib.suppress(OSError, ValueError):
            stats = json.loads(await asyncio.to_thread(_http, base + "/stats/requests"))
            if stats.get("extended_stats") or (not tab and "stats" in stats):
                polls[0] += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=poll_s)


async def _scrape(base: str, stop: asyncio.Event, every_s: float, scrapes: list[int]) -> None:
    """GET /metrics every ``every_s`` seconds, as a Prometheus scraping the harness does."""
    while not stop.is_set():
        with contextlib.suppress(OSError, ValueError):
            if b"loadlab_run_" in await asyncio.to_thread(_http, base + "/metrics"):
                scrapes[0] += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_s)


async def _fault_at_hold(run_dir: Path, args: argparse.Namespace, stop: asyncio.Event) -> None:
    """Write one leased fault to events.jsonl when the hold begins (as the chaos control does)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=args.ramp + args.settle + 5)
        return
    fault_id = uuid.uuid4().hex[:12]
    now = time.time()
    events = run_dir / "events.jsonl"
    for phase, lease in (("start", None), ("end", now + args.lease_s)):
        event = TimelineEvent(
            t=time.time(),
            kind="fault",
            name="bench fault",
            target="llm",
            lease_expires=lease,
            attrs={"fault_id": fault_id, "phase": phase, "status": None},
        )
        append_lines(events, [event_line(event)])


@dataclass(frozen=True, slots=True)
class Measurement:
    """One variant in one round."""

    variant: str
    round: int
    turns: int
    cpu_s: float
    window_s: float
    polls: int
    scrapes: int = 0
    profile: Path | None = None

    @property
    def cpu_ms_per_turn(self) -> float:
        """Locust CPU milliseconds per turn started in the window."""
        return 1000.0 * self.cpu_s / self.turns if self.turns else float("nan")


async def measure_one(
    args: argparse.Namespace, work: Path, server: CannedServer, variant: str, round_: int
) -> Measurement:
    """One run of ``variant``; its CPU per turn over the hold."""
    run_dir = work / f"run-{round_}-{variant}"
    port = _free_port()
    metrics_port = _free_port() if variant == ON else 0
    plan = (_UiOnlyLaunch if variant == WEB else LocustLaunch)(
        scenario_path=work / "soak.yaml",
        target_url=server.url,
        run_dir=run_dir,
        web=variant != OFF,
        web_port=port,
        metrics_port=metrics_port,
        jwt_secret=bench_secret(),
        progress_interval_s=30,
    )
    stop = asyncio.Event()
    polls = [0]
    scrapes = [0]
    side = [asyncio.create_task(_fault_at_hold(run_dir, args, stop))]
    if variant != OFF:
        side += [
            asyncio.create_task(
                _watch(f"http://127.0.0.1:{port}", stop, args.poll_s, polls, tab=variant == ON)
            )
            for _ in range(args.viewers)
        ]
    if variant == ON:
        side.append(
            asyncio.create_task(
                _scrape(f"http://127.0.0.1:{metrics_port}", stop, args.scrape_s, scrapes)
            )
        )
    total = args.ramp + args.hold
    profiler: list[asyncio.Task[None]] = []
    spy_out = work / f"pyspy-{round_}-{variant}.raw"

    def attach(pid: int) -> None:
        if args.profile:
            profiler.append(
                asyncio.create_task(
                    py_spy(
                        pid,
                        start_after_s=4.0 + args.ramp + args.settle,
                        duration_s=args.hold - args.settle - 2,
                        out=spy_out,
                        nonblocking=False,  # whole stacks: the shares are by frame
                    )
                )
            )

    progress(f"round {round_} {variant}: {args.sessions} sessions, {total:g} s")
    try:
        run = await run_loadlab(
            plan,
            log_path=work / f"locust-{round_}-{variant}.log",
            other_groups=lambda: {"server": server.pids},
            timeout_s=total + 120,
            interval_s=1.0,
            on_start=attach,
        )
    finally:
        stop.set()
        results = await asyncio.gather(*side, return_exceptions=True)
        await asyncio.gather(*profiler, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise RuntimeError(f"round {round_} {variant}: {errors[0]}")
    if run.returncode not in (0, 1) or not (run_dir / "manifest.json").exists():
        raise RuntimeError(
            f"Locust failed (exit {run.returncode}); last lines of {run.log_path}:\n"
            + log_tail(run.log_path)
        )
    data = load_run(run_dir)
    t0 = test_start(data)
    w_from, w_to = t0 + args.ramp + args.settle, t0 + args.ramp + args.hold - 1.0
    pair = bracket(run.samples, w_from, w_to)
    turns = turns_started(data, w_from, w_to)
    if pair is None or len(turns) == 0:
        raise RuntimeError(f"round {round_} {variant}: no turns or CPU samples in the window")
    use = between(*pair)
    return Measurement(
        variant=variant,
        round=round_,
        turns=len(turns),
        cpu_s=use.groups_s.get("load", 0.0),
        window_s=use.wall_s,
        polls=polls[0],
        scrapes=scrapes[0],
        profile=spy_out if spy_out.exists() else None,
    )


# Where the `on` variant's extra work runs, by a frame on the stack (py-spy raw
# lines: "thread;func (path:line);... count"); a sample counts for the first part
# that matches. The metrics sink's own frame is not counted: through it every row
# also reaches the recorder, which both variants pay for.
_ATTRIBUTION = {  # the metrics first: its scrapes read the faults too (FaultFeed)
    "metrics endpoint": ("RunMetrics.", "ServedMetrics.", "prometheus_client/"),
    "loadlab tab": ("LoadlabTab.", "FaultFeed.", "locust_plugin/web_tab.py"),
    "Locust's web UI (Flask, its stats JSON)": ("locust/web.py", "flask/", "werkzeug/"),
}


def attribute(path: Path) -> tuple[int, dict[str, Counter[str]]]:
    """Busy samples of the process, and in each part of the UI where they were.

    A sample counts for the first part (in :data:`_ATTRIBUTION`'s order) with a
    frame on its stack, under that frame and the next two (function names);
    idle samples (a thread waiting) count for none.
    """
    busy = 0
    parts: dict[str, Counter[str]] = {part: Counter() for part in _ATTRIBUTION}
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit() or ";" not in stack:
            continue
        if not busy_stack(stack):
            continue
        busy += int(count)
        frames = stack.split(";")
        for part, files in _ATTRIBUTION.items():
            hits = [i for i, frame in enumerate(frames) if any(f in frame for f in files)]
            if hits:
                where = " > ".join(f.split(" (")[0] for f in frames[hits[0] : hits[0] + 3])
                parts[part][where] += int(count)
                break
    return busy, parts


def report(args: argparse.Namespace, results: list[Measurement]) -> None:
    """The table per run, the overhead per round and overall."""
    print(
        f"## The loadlab tab: {args.sessions:,} sessions, think {args.think_s:g}+-1 s, "
        f"server latency {args.latency_ms:g} ms, {args.viewers} viewer(s) polling every "
        f"{args.poll_s:g} s\n"
    )
    rows = [
        [m.round, m.variant, m.turns, m.window_s, m.cpu_s, m.cpu_ms_per_turn, m.polls, m.scrapes]
        for m in results
    ]
    print(
        markdown_table(
            [
                "round",
                "variant",
                "turns in window",
                "window (s)",
                "Locust CPU (s)",
                "CPU ms / turn",
                "tab polls",
                "metrics scrapes",
            ],
            rows,
        )
    )
    for m in results:
        if m.profile is None:
            continue
        busy, parts = attribute(m.profile)
        print(f"\nround {m.round} `{m.variant}`, py-spy over the window: {busy:,} busy samples")
        for part, where in parts.items():
            print(f"  {where.total() / max(busy, 1):6.2%}  {part}")
            for stack, n in where.most_common(6):
                print(f"      {n / max(busy, 1):6.2%}  {stack}")
        print("\n".join(py_spy_summary(m.profile, top=25)))
    # The budget is the tab's and the metrics endpoint's: against `web` (Locust's UI
    # without them) when it ran; against headless, what the web UI costs in all.
    budget_base = WEB if any(m.variant == WEB for m in results) else OFF
    print()
    for base in dict.fromkeys((budget_base, OFF)):
        ratios = _ratios(results, ON, base)
        if not ratios:
            continue
        per_round = ", ".join(f"{r * 100:+.1f} %" for r in ratios)
        overall = statistics.median(ratios)
        what = {
            WEB: "tab + metrics endpoint (on vs web: Locust's UI on both sides)",
            OFF: "web UI, tab and metrics endpoint together (on vs off: headless)",
        }[base]
        verdict = ""
        if base == budget_base:
            verdict = " -- " + ("meets" if overall <= GOAL_OVERHEAD else "MISSES")
            verdict += f" the budget of +{GOAL_OVERHEAD * 100:g} %"
        print(
            f"CPU per turn, {what}: {per_round} per round; median {overall * 100:+.1f} %{verdict}"
        )


def _ratios(results: list[Measurement], variant: str, base: str) -> list[float]:
    """``variant``'s CPU per turn over ``base``'s, minus 1, round by round."""
    out = []
    for round_ in sorted({m.round for m in results}):
        by = {m.variant: m for m in results if m.round == round_}
        if variant in by and base in by:
            out.append(by[variant].cpu_ms_per_turn / by[base].cpu_ms_per_turn - 1.0)
    return out


async def amain(args: argparse.Namespace) -> int:
    """Run the rounds in a work directory; keep it with --keep."""
    limit = raise_fd_limit(args.sessions * 3 + 1024)
    print_header(
        "bench/web_tab_overhead.py",
        {
            "sessions": args.sessions,
            "latency_ms": args.latency_ms,
            "think_s": f"uniform {args.think_s - 1:g}-{args.think_s + 1:g}",
            "ramp_s": args.ramp,
            "hold_s": args.hold,
            "settle_s": args.settle,
            "rounds": args.rounds,
            "variants": "one after the other" if args.apart else "side by side",
            "viewers": args.viewers,
            "poll_s": args.poll_s,
            "open files limit": limit,
        },
    )
    work = Path(tempfile.mkdtemp(prefix="loadlab-bench-web-tab-"))
    (work / "soak.yaml").write_text(json.dumps(soak_scenario(args)))  # JSON is YAML
    results: list[Measurement] = []
    variants = (OFF, WEB, ON) if args.web_baseline else (OFF, ON)
    try:
        async with CannedServer(stats_dir=work / "server", latency_ms=args.latency_ms) as server:
            for round_ in range(1, args.rounds + 1):
                order = variants if round_ % 2 else variants[::-1]
                if args.apart:
                    for variant in order:
                        results.append(await measure_one(args, work, server, variant, round_))
                else:
                    results += await asyncio.gather(
                        *(measure_one(args, work, server, v, round_) for v in order)
                    )
        report(args, results)
    finally:
        if args.keep:
            print(f"\nwork directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return asyncio.run(amain(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
