"""Bytecode instructions per turn: a count that the machine's speed cannot move.

On a shared VM the speed of a core moves from second to second, so CPU
timings of identical code (``bench/efficiency.py``, ``bench/session_cpu.py``)
move by +/- 10-30 % from run to run (bench/RESULTS.md), more than most changes
to the hot path. This script counts instead: it runs each variant under
``sys.settrace`` with opcode events on and counts the Python bytecode
instructions executed per exchange, by file and by function. The count is the
same on every run (give or take the gevent scheduling of a few greenlets); a
change that removes work shows up exactly.

It is a proxy, not CPU: an instruction that calls into C (a regular expression,
``json.loads``, a socket send) counts as one however long the call takes, and
instructions differ in cost. Use it to see where loadlab's Python work goes and
whether a change removed some; use CPU benchmarks for the cost (``--cpu N``
times the variants too, alternated, in the same process).

Variants, against the canned SSE server (bench/_sse_server.py, ``--tokens``
token events an answer), each exchange one POST and its whole answer:

* ``transport``, ``client``, ``locust``: as in ``bench/transport_cpu.py``
  (loadlab's transport; its ``AgentClient.send_turn``; Locust's ``iter_lines``
  with its request event: what the plain ``FastHttpUser`` of
  ``bench/efficiency.py`` does a turn);
* ``session``: loadlab's whole turn but Locust's scheduling: sessions planned,
  each turn played by :class:`~loadlab.load.player.SessionPlayer` through
  ``AgentClient`` over the transport, the rows handed to the live window and a
  real recorder (:class:`~loadlab.measure.live_status.ObservedSink`; its flushes
  are counted too), Locust's request event fired per attempt as the Locust user
  does.

Run from inside a tree to count that tree (the imports take the current
directory first)::

    (cd TREE && PYTHONPATH=TREE /work/main/.venv/bin/python /work/main/bench/opcodes.py)
"""

from gevent import monkey

monkey.patch_all()

# ruff: noqa: E402 - everything below runs on the patched standard library
import argparse
import collections
import itertools
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

import gevent
from locust.env import Environment

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import transport_cpu
from session_cpu import new_player, no_think_scenario

from loadlab.load.adapters import ReferenceAdapter
from loadlab.load.client import AgentClient
from loadlab.load.fasthttp import FastHttpTransport
from loadlab.load.in_flight import InFlightCounters
from loadlab.load.player import Attempt
from loadlab.measure.live_status import LiveWindow, ObservedSink
from loadlab.measure.recorder import RunRecorder
from loadlab.measure.rundir import RunDirectory

SECRET = "bench-opcodes-" + "k" * 32
VARIANTS = ("transport", "client", "session", "locust")


def parse_args() -> argparse.Namespace:
    """The command line (see --help)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2_000, help="exchanges a variant (2000)")
    parser.add_argument("--tokens", type=int, default=8, help="token events an answer (8)")
    parser.add_argument("--top", type=int, default=12, help="files and functions shown (12)")
    parser.add_argument(
        "--cpu",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="then time each variant's CPU per exchange (process time, 50 greenlets, 3,000 "
        "exchanges a round), alternated for ROUNDS rounds (0: no timing)",
    )
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"which, comma-separated ({','.join(VARIANTS)})",
    )
    args = parser.parse_args()
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown or not args.variants:
        parser.error(f"--variants: unknown {unknown or 'none given'}; choose from {VARIANTS}")
    if args.n < 10 or args.tokens < 0 or args.top < 0 or args.cpu < 0:
        parser.error("need --n >= 10, --tokens >= 0, --top >= 0, --cpu >= 0")
    return args


class OpcodeCounter:
    """Counts the bytecode instructions executed, per code object, while active."""

    def __init__(self) -> None:
        self.counts: collections.Counter[CodeType] = collections.Counter()

    def _local(self, frame: FrameType, event: str, _arg: Any) -> Any:
        if event == "opcode":
            self.counts[frame.f_code] += 1
        return self._local

    def _global(self, frame: FrameType, _event: str, _arg: Any) -> Any:
        frame.f_trace_opcodes = True
        return self._local

    def __enter__(self) -> "OpcodeCounter":
        self.counts.clear()
        sys.settrace(self._global)
        return self

    def __exit__(self, *_: object) -> None:
        sys.settrace(None)


_LIBRARY = re.compile(r".*/(?:site-packages|lib/python3\.\d+)/")


def _where(code: CodeType) -> str:
    name = _LIBRARY.sub("", code.co_filename, count=1)
    for root in (str(Path.cwd()) + "/", str(BENCH_DIR.parent) + "/"):
        name = name.removeprefix(root)
    return name


def session_worker(base: str, tmp: Path) -> transport_cpu.Worker:
    """loadlab's turn without Locust's scheduling (see the module docstring); the run
    directory of its recorder goes in ``tmp``."""
    scenario = no_think_scenario("bench_opcodes")
    recorder = RunRecorder(RunDirectory(tmp / "run"), parts="thread").start()
    sink = ObservedSink(recorder, LiveWindow())
    env = Environment()
    seeds = itertools.count(1)

    def report(attempt: Attempt) -> None:
        sample = attempt.sample
        env.events.request.fire(
            request_type="POST",
            name=sample.name,
            response_time=sample.latency_ms,
            response_length=sample.bytes,
            exception=None,
            context={},
            response=None,
            start_time=sample.t_start,
            url=base,
        )

    def work(tag: str, n: int, _: str = "") -> None:
        pool = transport_cpu.FastHttpSession(
            base_url=base,
            request_event=env.events.request,
            user=None,
            network_timeout=None,
            connection_timeout=60.0,
            max_redirects=30,
            max_retries=0,
            concurrency=2,
        ).client.clientpool
        client = AgentClient(
            transport=FastHttpTransport(pool),
            adapter=ReferenceAdapter(),
            base_url=base,
            timeout_s=10.0,
            live=InFlightCounters(),
        )
        turns = 0
        while turns < n:
            seed = next(seeds)
            session_id = f"{tag}-{seed:07d}"
            player = new_player(
                scenario, seed, session_id, client, sink, sleep=gevent.sleep, on_attempt=report
            )
            while not player.done and turns < n:
                record = player.play_next_turn(due=time.perf_counter())
                if not record.ok:
                    raise RuntimeError(f"a turn failed: {record}")
                turns += 1
            player.finish(stopped=not player.done)

    work.flush = recorder.flush  # type: ignore[attr-defined]
    work.close = recorder.close  # type: ignore[attr-defined]
    return work


def count(work: transport_cpu.Worker, name: str, n: int) -> collections.Counter[CodeType]:
    """Instructions per code object over ``n`` exchanges, two greenlets at a time."""
    warm = [gevent.spawn(work, f"warm-{name}-{u}", 100) for u in range(2)]
    gevent.joinall(warm, raise_error=True)
    with OpcodeCounter() as counter:
        gevent.joinall(
            [gevent.spawn(work, f"{name}-{u}", n // 2) for u in range(2)], raise_error=True
        )
        # The rows of these turns written once, as the recorder does every second.
        getattr(work, "flush", lambda: None)()
    return counter.counts


def timed(workers: dict[str, transport_cpu.Worker], names: list[str], rounds: int) -> None:
    """CPU per exchange of each variant, alternated round by round (what the count is not)."""
    print(f"\n## CPU per exchange (process time, 50 greenlets, {rounds} rounds alternated)")
    cpu = transport_cpu.alternated(workers, names, users=50, n=3_000, rounds=rounds, verbose=False)
    for name in names:
        rounds_us = ", ".join(f"{x:.0f}" for x in cpu[name])
        print(f"  {name:9s} median {statistics.median(cpu[name]):6.1f} us ({rounds_us})")
    if "session" in cpu and "locust" in cpu:
        ratio = statistics.median(cpu["session"]) / statistics.median(cpu["locust"])
        print(f"session / locust: {ratio:.2f} (in CPU)")


def main() -> int:
    """Start the server, then count each variant."""
    args = parse_args()
    server = subprocess.Popen(
        [sys.executable, str(transport_cpu.SERVER), "--tokens", str(args.tokens)],
        stdout=subprocess.PIPE,
        text=True,
    )
    tmp = tempfile.TemporaryDirectory(prefix="loadlab-bench-opcodes-")
    workers: dict[str, transport_cpu.Worker] = {}
    try:
        assert server.stdout is not None
        base = f"http://127.0.0.1:{int(server.stdout.readline().split()[1])}"
        workers = transport_cpu.workers(base) | {"session": session_worker(base, Path(tmp.name))}
        n = args.n // 2 * 2
        print(f"# bench/opcodes.py --n {n} --tokens {args.tokens}  (instructions per exchange)")
        totals: dict[str, float] = {}
        for name in args.variants:
            counts = count(workers[name], name, n)
            totals[name] = sum(counts.values()) / n
            by_file: collections.Counter[str] = collections.Counter()
            for code, c in counts.items():
                by_file[_where(code)] += c
            print(f"\n## {name}: {totals[name]:,.0f} instructions per exchange")
            for where, c in by_file.most_common(args.top):
                print(f"  {c / n:8.0f}  {where}")
            print("  by function:")
            for code, c in counts.most_common(args.top):
                print(f"  {c / n:8.0f}  {_where(code)}:{code.co_firstlineno} {code.co_name}")
        if "session" in totals and "locust" in totals:
            print(
                f"\nsession / locust: {totals['session'] / totals['locust']:.2f} "
                "(loadlab's turn against plain Locust's request, in instructions)"
            )
        if args.cpu:
            timed(workers, args.variants, args.cpu)
    finally:
        getattr(workers.get("session"), "close", lambda: None)()
        server.terminate()
        server.wait(timeout=10)
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
