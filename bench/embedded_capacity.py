"""How many concurrent sessions the embedded pod-mode stack sustains here, and what limits it.

Starts :class:`loadlab.embedded.stack.EmbeddedStack` (ministack, the LLM
simulator, ``--replicas`` agent pods; time scale 1.0) in a private state
directory, then one loadlab Locust process
(:class:`loadlab.load.launch.LocustLaunch`) with a ``step`` shape: levels of
``--start-users`` + k * ``--step-users`` sessions, each held ``--step-s``. The
shoppers are those of ``--scenario`` (default ``demo``: its personas, think
time, retry and timeout; only the shape is replaced).

Per step, over the turns that start after ``--settle-s`` (new sessions arrive
together and need a moment to spread out), it computes from the run directory
(:func:`loadlab.analysis.rundata.load_run`) the P50/P99 turn latency, the P99
time to first token, turns per second and failed turns, and from /proc the CPU
of each process group (Locust, agent pods, LLM simulator, ministack, and this
process, which runs the fleet supervisor). The ratio of each step's P99 to the
first step's is the side-by-side measure: the knee is the first step whose P99
exceeds the first step's by more than ``--knee-pct`` percent, or that has
failed turns. The report names the busiest process group at the knee.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from _launch import log_tail, raise_fd_limit, run_loadlab, write_scenario
from _procstat import CpuUse, between, bracket, with_descendants
from _report import markdown_table, print_header, progress
from _runwindow import p, test_start, turns_started, users_between

from loadlab.analysis.rundata import load_run
from loadlab.app.scenarios import resolve_scenario_path
from loadlab.embedded.stack import EmbeddedStack
from loadlab.load.launch import LocustLaunch

GROUPS = ("load", "agents", "llm", "ministack", "supervisor")
GROUP_TITLES = {
    "load": "Locust",
    "agents": "agent pods",
    "llm": "LLM sim",
    "ministack": "ministack",
    "supervisor": "supervisor",
}
SINGLE_PROCESS = {"load", "llm", "ministack", "supervisor"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see --help)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Example: .venv/bin/python bench/embedded_capacity.py --quick",
    )
    parser.add_argument(
        "--scenario", default="demo", help="whose shoppers (think time...) to use (demo)"
    )
    parser.add_argument("--start-users", type=int, default=50, help="first level (50)")
    parser.add_argument("--step-users", type=int, default=50, help="added per level (50)")
    parser.add_argument("--steps", type=int, default=8, help="levels (8: 50..400)")
    parser.add_argument("--step-s", type=float, default=45.0, help="seconds per level (45)")
    parser.add_argument(
        "--settle-s", type=float, default=10.0, help="seconds skipped at each level's start (10)"
    )
    parser.add_argument(
        "--knee-pct",
        type=float,
        default=25.0,
        help="P99 above the first level's by more than this %% is the knee (25)",
    )
    parser.add_argument(
        "--max-error-rate",
        type=float,
        default=0.0,
        help="failed turns per turn above this is the knee (0: any failure)",
    )
    parser.add_argument("--replicas", type=int, default=4, help="agent pods (4)")
    parser.add_argument(
        "--quick", action="store_true", help="smoke mode: two 12 s levels of 10 and 20 sessions"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    if args.quick:
        args.start_users, args.step_users, args.steps = 10, 10, 2
        args.step_s, args.settle_s = 12.0, 4.0
    if args.start_users < 1 or args.step_users < 0 or args.steps < 1:
        parser.error("need --start-users >= 1, --step-users >= 0, --steps >= 1")
    if args.step_s <= args.settle_s + 2:
        parser.error("--step-s must exceed --settle-s by at least 2 s")
    return args


def capacity_scenario(args: argparse.Namespace) -> dict[str, Any]:
    """The chosen scenario's shoppers with a step shape, in real time."""
    source = resolve_scenario_path(args.scenario)
    scenario = yaml.safe_load(source.read_text())
    scenario["name"] = f"bench_capacity_{scenario.get('name', 'scenario')}"
    scenario["description"] = f"bench/embedded_capacity.py: step shape, shoppers of {source.name}"
    scenario["time_scale"] = 1.0
    scenario.get("target", {}).pop("url", None)
    scenario["shape"] = {
        "kind": "step",
        "start_users": args.start_users,
        "step_users": args.step_users,
        "step_s": args.step_s,
        "steps": args.steps,
    }
    return scenario


@dataclass(frozen=True, slots=True)
class StepResult:
    """One level of the step shape, over its settled part."""

    level: int
    users_asked: int
    users_mean: float | None
    turns: int
    turns_per_s: float
    failed: int
    interrupted: int
    p50: float | None
    p99: float | None
    ttft_p99: float | None
    cpu: CpuUse | None

    @property
    def error_rate(self) -> float:
        """Failed turns per turn."""
        return self.failed / self.turns if self.turns else 0.0


def _stack_groups(
    stack: EmbeddedStack, stack_pids: Mapping[str, int | None]
) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {"supervisor": [os.getpid()]}
    for name in ("llm", "ministack"):
        pid = stack_pids.get(name)
        # ministack may run services in child processes: they are ministack's CPU too.
        groups[name] = sorted(with_descendants([pid])) if pid else []
    groups["agents"] = [pod.pid for pod in stack.fleet.pods() if pod.pid is not None]
    return groups


async def measure(args: argparse.Namespace, work: Path) -> list[StepResult]:
    """Start the stack, run the step shape, cut the run directory into steps."""
    scenario = write_scenario(work / "capacity.yaml", capacity_scenario(args))
    run_dir = work / "run"
    stack = EmbeddedStack(replicas=args.replicas, state_dir=work / "stack")
    progress(f"starting the embedded stack ({args.replicas} agent pods) ...")
    async with stack:
        state = stack.state
        stack_pids = state.pids
        plan = LocustLaunch(
            scenario_path=scenario,
            target_url=state.endpoints.agent_url,
            run_dir=run_dir,
            jwt_secret=state.jwt_secret,
            progress_interval_s=args.step_s,
        )
        total = args.steps * args.step_s
        progress(
            f"stack ready; Locust: {args.steps} level(s) of {args.step_s:g} s from "
            f"{args.start_users} sessions, +{args.step_users} each (~{total:.0f} s)"
        )
        run = await run_loadlab(
            plan,
            log_path=work / "locust.log",
            other_groups=lambda: _stack_groups(stack, stack_pids),
            timeout_s=total + 120,
            interval_s=1.0,
        )
    if run.returncode not in (0, 1) or not (run_dir / "manifest.json").exists():
        raise RuntimeError(
            f"Locust failed (exit {run.returncode}); last lines of {run.log_path}:\n"
            + log_tail(run.log_path)
        )
    data = load_run(run_dir)
    t0 = test_start(data)
    results = []
    for level in range(args.steps):
        w_from = t0 + level * args.step_s + args.settle_s
        w_to = t0 + (level + 1) * args.step_s
        turns = turns_started(data, w_from, w_to)
        ok = turns[turns["ok"]]
        pair = bracket(run.samples, w_from, w_to)
        results.append(
            StepResult(
                level=level,
                users_asked=args.start_users + level * args.step_users,
                users_mean=users_between(data, w_from, w_to).mean,
                turns=len(turns),
                turns_per_s=len(turns) / (w_to - w_from),
                failed=int((~turns["ok"]).sum()),
                interrupted=int(turns["interrupted"].sum()),
                p50=p(ok["latency_ms"], 50),
                p99=p(ok["latency_ms"], 99),
                ttft_p99=p(ok["ttft_ms"], 99),
                cpu=None if pair is None else between(*pair),
            )
        )
    return results


def knee(args: argparse.Namespace, steps: Sequence[StepResult]) -> StepResult | None:
    """The first level whose P99 or error rate crosses the limits, else None."""
    base = steps[0].p99
    for step in steps:
        over = (
            base is not None
            and step.p99 is not None
            and step.p99 > base * (1 + args.knee_pct / 100)
        )
        if over or step.error_rate > args.max_error_rate:
            return step
    return None


def limiter(step: StepResult, nproc: int) -> str:
    """What the CPU samples of a level say limits it."""
    if step.cpu is None:
        return "unknown (no CPU samples in the level)"
    use = step.cpu
    busiest = max(GROUPS, key=use.percent_of_core)
    pct = use.percent_of_core(busiest)
    for group in GROUPS:
        if group in SINGLE_PROCESS and use.percent_of_core(group) >= 85:
            return (
                f"{GROUP_TITLES[group]} is CPU-bound ({use.percent_of_core(group):.0f}% of "
                "one core; a single process cannot use more)"
            )
    if use.machine_percent >= 85:
        return (
            f"the machine's CPU is saturated ({use.machine_percent:.0f}% of {nproc} cores); "
            f"the biggest consumer is {GROUP_TITLES[busiest]} ({pct:.0f}% of a core)"
        )
    return (
        f"no CPU limit seen (machine {use.machine_percent:.0f}%, busiest "
        f"{GROUP_TITLES[busiest]} {pct:.0f}% of a core): latency grows elsewhere "
        "(LLM simulator queueing, DynamoDB calls, agent concurrency)"
    )


def report(args: argparse.Namespace, steps: list[StepResult]) -> None:
    """Print the per-level table, the knee and the limiter."""
    base = steps[0].p99
    rows = []
    found = knee(args, steps)
    for s in steps:
        ratio = f"{s.p99 / base:.2f}x" if s.p99 is not None and base else "-"
        cpu = s.cpu
        rows.append(
            [
                s.users_asked,
                s.users_mean,
                s.turns,
                s.turns_per_s,
                s.p50,
                s.p99,
                ratio,
                s.ttft_p99,
                f"{s.failed} ({s.interrupted})",
                *[None if cpu is None else cpu.percent_of_core(g) for g in GROUPS],
                None if cpu is None else cpu.machine_percent,
                "KNEE" if s is found else ("degraded" if found and s.level > found.level else "ok"),
            ]
        )
    print(
        f"## Embedded capacity: {args.replicas} agent pods, shoppers of {args.scenario}, "
        f"{args.step_s:g} s levels ({args.settle_s:g} s settling skipped)\n"
    )
    print(
        markdown_table(
            [
                "sessions",
                "Locust users (mean)",
                "turns",
                "turns/s",
                "P50 ms",
                "P99 ms",
                "P99 vs first",
                "TTFT P99 ms",
                "failed (interrupted)",
                *[f"{GROUP_TITLES[g]} CPU %" for g in GROUPS],
                "machine CPU % (all cores)",
                "level",
            ],
            rows,
        )
    )
    nproc = len(os.sched_getaffinity(0))
    print("\nCPU columns are percent of one core; the machine column is percent of all cores.")
    if found is None:
        print(
            f"\nno knee within the levels run: the stack sustains at least "
            f"{steps[-1].users_asked} sessions (P99 within +{args.knee_pct:g}% of the first "
            f"level, failed turns <= {args.max_error_rate:g}); raise --steps to find it"
        )
        print(f"at the last level: {limiter(steps[-1], nproc)}")
        return
    why = []
    if base is not None and found.p99 is not None and found.p99 > base * (1 + args.knee_pct / 100):
        why.append(f"P99 {found.p99:,.0f} ms = {found.p99 / base:.2f}x the first level")
    if found.error_rate > args.max_error_rate:
        why.append(f"{found.failed} failed turns ({found.error_rate:.1%})")
    sustained = steps[found.level - 1].users_asked if found.level > 0 else None
    print(
        f"\nknee at {found.users_asked} sessions: {'; '.join(why)}"
        + (
            f"\nsustains {sustained} sessions on this machine"
            if sustained is not None
            else "\nthe first level is already over the limit: lower --start-users"
        )
    )
    print(f"what limits it at the knee: {limiter(found, nproc)}")


async def amain(args: argparse.Namespace) -> int:
    """Run the benchmark in a work directory; keep it with --keep."""
    peak = args.start_users + (args.steps - 1) * args.step_users
    raise_fd_limit(max(4096, peak * 4))
    print_header(
        "bench/embedded_capacity.py",
        {
            "scenario": args.scenario,
            "levels": ", ".join(
                str(args.start_users + k * args.step_users) for k in range(args.steps)
            ),
            "step_s": args.step_s,
            "settle_s": args.settle_s,
            "knee": f"P99 > first level + {args.knee_pct:g}% or error rate > "
            f"{args.max_error_rate:g}",
            "replicas": args.replicas,
            "stack time_scale": 1.0,
        },
    )
    work = Path(tempfile.mkdtemp(prefix="loadlab-bench-capacity-"))
    try:
        report(args, await measure(args, work))
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
