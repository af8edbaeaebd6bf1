"""`loadlab report` on a big run directory: its time and peak memory.

Synthesises a run directory as a long flash sale would leave it: ``--requests``
request rows (default 1,000,000) and as many turns (one attempt each, a few
retried), the sessions they belong to (``--turns-per-session``), Locust's user
count every second and a pod kill in events.jsonl, each table written as
loadlab's recorder writes it (one parquet part per ``--part-rows`` rows, in the
recorder's schemas). Then runs ``loadlab report`` on it in a process of its own
under ``/usr/bin/time -v`` and prints the wall time, the CPU time and the peak
resident memory against the goal (5 s, 1 GB). Nothing here is timed in the tests.

``--layout`` picks the directory's shape: ``sealed`` as a finished run leaves it
(the recorder compacts each table's parts into one file when it closes:
:func:`loadlab.measure.parts.compact_table`, timed here too), ``parts`` as an
unsealed or killed run leaves it (one part per flush), or ``both`` (the default),
timed round by round side by side.

``--compare-with TREE`` times another loadlab checkout too (a git worktree of an
older commit), alternating with this one round by round on the same run
directory, and checks that both wrote the same summary.json. The report runs in
the run's parent directory with the tree first on ``PYTHONPATH``:
``python -m`` puts the working directory first on ``sys.path``, so run from a
checkout it would import that checkout's loadlab whatever ``PYTHONPATH`` says.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from _report import markdown_table, print_header, progress

import loadlab
from loadlab.measure.part_file import arrow_schema
from loadlab.measure.parts import compact_table
from loadlab.measure.rundir import RunDirectory, RunManifest
from loadlab.rows import (
    ROW_TYPES,
    RequestSample,
    SessionRecord,
    TimelineEvent,
    TurnRecord,
    event_line,
)

GOAL_S = 5.0
GOAL_MB = 1024.0
INTENTS = ("browse", "search", "compare", "add_to_cart", "remove_from_cart", "order_status")
T0 = 1_760_000_000.0
THIS_TREE = Path(loadlab.__file__).resolve().parents[1]
"""The checkout whose loadlab this script imports."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see --help)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000, help="request rows (1e6)")
    parser.add_argument("--turns-per-session", type=int, default=7, help="(7)")
    parser.add_argument("--turns-per-s", type=float, default=1000.0, help="run rate (1000)")
    parser.add_argument("--part-rows", type=int, default=1000, help="rows per part file (1000)")
    parser.add_argument(
        "--layout",
        choices=("sealed", "parts", "both"),
        default="both",
        help="the tables compacted as the recorder closes them, one part per flush, or both",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run directory")
    parser.add_argument("--rounds", type=int, default=1, help="reports timed per tree (1)")
    parser.add_argument(
        "--compare-with",
        type=Path,
        metavar="TREE",
        help="another loadlab checkout, timed in alternate rounds (e.g. a git worktree)",
    )
    args = parser.parse_args(argv)
    if args.requests < 10 or args.part_rows < 1 or args.turns_per_session < 1:
        parser.error("need --requests >= 10, --part-rows >= 1, --turns-per-session >= 1")
    if args.rounds < 1:
        parser.error("need --rounds >= 1")
    if args.compare_with is not None and not (args.compare_with / "loadlab").is_dir():
        parser.error(f"--compare-with {args.compare_with}: no loadlab package in it")
    return args


def _write_table(directory: Path, columns: dict[str, object], schema: pa.Schema, part: int) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pydict(columns, schema=schema)
    parts = 0
    for start in range(0, table.num_rows, part):
        pq.write_table(table.slice(start, part), directory / f"part-{parts:06d}.parquet")
        parts += 1
    return parts


def synthesise(path: Path, args: argparse.Namespace) -> dict[str, int]:
    """Write the run directory; return the row count of each table."""
    rng = np.random.default_rng(1)
    n = args.requests
    duration = n / args.turns_per_s
    run = RunDirectory(path)
    path.mkdir(parents=True)
    run.write_manifest(
        RunManifest(
            run_id="scale",
            name="report-scale",
            started_at=T0,
            scenario_path=None,
            scenario_sha256=None,
            scenario={"slo": {"p99_ms": 5000}},
            target={"url": "http://127.0.0.1:9"},
            versions={},
            seed=1,
            ended_at=T0 + duration + 10,
            end_reason="finished",
        )
    )
    turn_of = np.arange(n)
    session = turn_of // args.turns_per_session
    t_start = T0 + np.sort(rng.uniform(0, duration, n))
    latency = rng.lognormal(np.log(900.0), 0.35, n)
    ok = rng.random(n) > 0.002
    intent = np.array(INTENTS)[rng.integers(0, len(INTENTS), n)]
    session_ids = np.char.add("scale-", session.astype(str))
    pods = np.char.add("pod-", rng.integers(0, 8, n).astype(str))
    cold = rng.random(n) < 0.001
    kinds = np.where(ok, None, "reset").astype(object)
    requests = {
        "t_start": t_start,
        "name": np.char.add("turn:", intent),
        "session_id": session_ids,
        "turn_index": turn_of % args.turns_per_session + 1,
        "attempt": np.ones(n, dtype=np.int64),
        "latency_ms": latency,
        "ttft_ms": latency * 0.4,
        "bytes": rng.integers(400, 900, n),
        "status": np.where(ok, 200, 0),
        "error_kind": kinds,
        "error": np.where(ok, None, "connection closed mid-stream").astype(object),
        "tokens": rng.integers(8, 40, n),
        "max_gap_ms": latency * 0.05,
        "instance_id": pods,
        "cold_start": cold,
        "init_ms": np.where(cold, 850.0, np.nan),
        "worker": np.full(n, "local"),
    }
    t_end = t_start + latency / 1000.0
    turns = {
        "t_start": t_start,
        "t_end": t_end,
        "session_id": session_ids,
        "turn_index": requests["turn_index"],
        "intent": intent,
        "ok": ok,
        "attempts": np.ones(n, dtype=np.int64),
        "latency_ms": latency,
        "ttft_ms": latency * 0.4,
        "interrupted": ~ok,
        "error_kind": kinds,
        "instance_id": pods,
        "cold_start": cold,
        "state_source": np.full(n, "memory"),
        "replayed": np.zeros(n, dtype=bool),
        "state_turn": requests["turn_index"],
        "checkpoint_version": requests["turn_index"],
        "cart_items": rng.integers(0, 4, n),
        "ddb_calls": np.full(n, 2),
        "ddb_rcu": np.full(n, 0.5),
        "ddb_wcu": np.full(n, 1.0),
        "llm_calls": np.ones(n, dtype=np.int64),
        "tokens_in": rng.integers(100, 300, n),
        "tokens_out": rng.integers(20, 80, n),
        "worker": np.full(n, "local"),
        "answer_bytes": requests["bytes"],
        "answer_truncated": np.zeros(n, dtype=bool),
        "lateness_ms": rng.exponential(0.5, n),
    }
    turn_schema = arrow_schema(TurnRecord)
    for name in turn_schema.names:
        turns.setdefault(name, np.zeros(n, dtype=np.int64))
    starts = np.unique(session, return_index=True)[1]
    ends = np.r_[starts[1:], n] - 1
    s = len(starts)
    sessions = {
        "session_id": session_ids[starts],
        "persona": np.full(s, "bargain_hunter"),
        "seed": np.arange(s),
        "t_start": t_start[starts],
        "t_end": t_end[ends],
        "turns_planned": np.full(s, args.turns_per_session),
        "turns_done": ends - starts + 1,
        "interrupted_turns": np.zeros(s, dtype=np.int64),
        "verdict": np.full(s, "clean"),
        "verdict_reason": np.full(s, ""),
        "resume_latency_ms": np.full(s, np.nan),
        "checkpoint_version": ends - starts + 1,
        "cart_json": np.full(s, "{}"),
        "worker": np.full(s, "local"),
        "expected_cart_json": np.full(s, "{}"),
    }
    for name, columns, row in (
        ("requests", requests, RequestSample),
        ("turns", turns, TurnRecord),
        ("sessions", sessions, SessionRecord),
    ):
        schema = arrow_schema(row)
        data = {k: _column(columns[k]) for k in schema.names}
        _write_table(run.table(name), data, schema, args.part_rows)
    (run.table("pressure")).mkdir(parents=True, exist_ok=True)
    events = [TimelineEvent(t=T0, kind="phase", name="test_start")]
    events += [
        TimelineEvent(t=T0 + sec, kind="users", name="users", attrs={"users": 5000})
        for sec in range(int(duration))
    ]
    kill = T0 + duration / 2
    events += [
        TimelineEvent(t=kill, kind="fault", name="terminate pods", target="pod-1",
                      attrs={"fault_id": "f1", "phase": "start"}),
        TimelineEvent(t=kill + 2, kind="fault", name="terminate pods", target="pod-1",
                      attrs={"fault_id": "f1", "phase": "end", "status": "succeeded"}),
    ]  # fmt: skip
    run.events.write_text("".join(event_line(e) + "\n" for e in events))
    return {"requests": n, "turns": n, "sessions": s, "events": len(events)}


def _column(values: object) -> object:
    # Arrow takes numpy arrays as they are; NaN in a float column is a null, as recorded.
    if isinstance(values, np.ndarray) and values.dtype.kind == "U":
        return values.astype(object)
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        return pa.array(values, from_pandas=True)
    return values


@dataclass(frozen=True, slots=True)
class Timed:
    """One ``loadlab report`` run: wall and CPU seconds, peak RSS, exit code, stderr tail."""

    wall_s: float
    cpu_s: float
    peak_mb: float
    returncode: int
    tail: str
    summary: bytes


def time_report(path: Path, tree: Path = THIS_TREE) -> Timed:
    """``loadlab report`` of ``path`` with ``tree``'s loadlab, under /usr/bin/time -v."""
    cmd = [sys.executable, "-m", "loadlab", "report", str(path)]
    timer = shutil.which("time") or "/usr/bin/time"
    # Timed as an installed loadlab runs: its modules' bytecode cached (a shell with
    # PYTHONDONTWRITEBYTECODE=1 would compile every import again, ~2 s here).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
    # Not in a checkout: `python -m` would import the loadlab of the working directory.
    cwd = path.parent
    imported = subprocess.run(
        [
            sys.executable,
            "-c",
            "import loadlab, loadlab.cli, loadlab.app.report, loadlab.report.render;"
            "print(loadlab.__file__)",
        ],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    if Path(imported.stdout.strip()).resolve().parent.parent != tree.resolve():
        raise SystemExit(f"{tree}: python imports loadlab from {imported.stdout.strip()}")
    t0 = time.perf_counter()
    proc = subprocess.run(
        [timer, "-v", *cmd],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env=env,
        cwd=cwd,
    )
    wall = time.perf_counter() - t0
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    user = re.search(r"User time \(seconds\): ([\d.]+)", proc.stderr)
    system = re.search(r"System time \(seconds\): ([\d.]+)", proc.stderr)
    summary = path / "summary.json"
    return Timed(
        wall_s=wall,
        cpu_s=float(user.group(1)) + float(system.group(1)) if user and system else math.nan,
        peak_mb=int(peak.group(1)) / 1024.0 if peak else math.nan,
        returncode=proc.returncode,
        tail=proc.stderr[-1500:],
        # the same run in another directory: only the path it names may differ
        summary=summary.read_bytes().replace(str(path).encode(), b"RUN")
        if summary.exists()
        else b"",
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    trees = [THIS_TREE] if args.compare_with is None else [args.compare_with, THIS_TREE]
    print_header(
        "bench/report_scale.py",
        {
            "requests": args.requests,
            "turns_per_session": args.turns_per_session,
            "turns_per_s": args.turns_per_s,
            "part_rows": args.part_rows,
            "rounds": args.rounds,
            "layout": args.layout,
            "trees": " then ".join(f"{t} ({_commit(t)})" for t in trees),
        },
    )
    work = Path(tempfile.mkdtemp(prefix="loadlab-bench-report-"))
    try:
        run = work / "run"
        started = time.perf_counter()
        counts = synthesise(run, args)
        progress(f"run directory written in {time.perf_counter() - started:.1f} s: {counts}")
        layouts = {"parts": run} if args.layout != "sealed" else {}
        if args.layout != "parts":
            sealed = work / "sealed" / "run"
            shutil.copytree(run, sealed)
            started = time.perf_counter()
            for name in ("requests", "turns", "sessions", "pressure"):
                compact_table(RunDirectory(sealed).table(name), arrow_schema(ROW_TYPES[name]))
            took = time.perf_counter() - started
            progress(f"tables compacted as the recorder closes them, in {took:.1f} s")
            layouts = {"sealed": sealed} | layouts
            if args.layout == "sealed":
                shutil.rmtree(run)
        rows, summaries = [], set()
        for round_no in range(1, args.rounds + 1):
            # alternated: a busy spell of the machine hits every tree and layout
            for tree in trees:
                for layout, path in layouts.items():
                    load = os.getloadavg()[0]
                    timed = time_report(path, tree)
                    progress(f"round {round_no}, {tree}, {layout}: {timed.wall_s:.2f} s")
                    if timed.returncode not in (0, 6):  # 6: the verdict failed, as it may
                        print(f"loadlab report failed (exit {timed.returncode}):\n{timed.tail}")
                        return 1
                    summaries.add(timed.summary)
                    rows.append(
                        [
                            round_no,
                            f"{tree.name} ({_commit(tree)})",
                            layout,
                            round(timed.wall_s, 2),
                            round(timed.cpu_s, 2),
                            round(timed.peak_mb),
                            f"{timed.wall_s / GOAL_S:.2f}x",
                            f"{timed.peak_mb / GOAL_MB:.2f}x",
                            f"{load:.2f}",
                        ]
                    )
        parts = -(-counts["requests"] // args.part_rows)
        print(
            f"\n{counts['requests']:,} request rows; parts: {parts:,} part files per table, "
            "sealed: one per table\n"
        )
        print(
            markdown_table(
                [
                    "round",
                    "loadlab",
                    "layout",
                    "wall s",
                    "CPU s (user+sys)",
                    "peak RSS MB",
                    "vs 5 s",
                    "vs 1 GB",
                    "load avg before",
                ],
                rows,
            )
        )
        summary = json.loads((next(iter(layouts.values())) / "summary.json").read_text())
        same = "identical in every run" if len(summaries) == 1 else "DIFFERENT between runs"
        print(f"\nsummary.json: {summary['totals']['turns']:,} turns; {same}")
    finally:
        if args.keep:
            print(f"run directories kept: {', '.join(str(p) for p in layouts.values())}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if len(summaries) == 1 else 1


def _commit(tree: Path) -> str:
    """The short commit of a git checkout (``+`` when it has changes), or ``?``."""
    try:
        head = subprocess.run(
            ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(tree), "status", "--porcelain", "--", "loadlab"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"
    return head + ("+" if dirty else "")


if __name__ == "__main__":
    sys.exit(main())
