"""CPU per turn of loadlab's session work above the socket, without a sampling profiler.

``bench/efficiency.py`` times whole Locust processes, and its ratio moves by
+/- 0.1 between rounds of identical code on a shared machine; ``--profile``
counts a thread waiting for a CPU as busy. This script times (process CPU,
``time.process_time``) only what loadlab does for a turn besides the HTTP
exchange, in one process patched by gevent as Locust's is:

* planning each session (``plan_session``) and its credentials;
* :class:`~loadlab.load.player.SessionPlayer` playing it turn by turn through
  an :class:`~loadlab.load.client.AgentClient`: the request prepared, the SSE
  answer parsed and decoded, the ledger's checks, the rows built;
* the rows handed to the live window and the run's recorder
  (:class:`~loadlab.measure.live_status.ObservedSink`), as under Locust (the
  recorder's flush, a child process's work there, is not counted here);

with the cyclic garbage collector off, as under Locust (``loadlab.load.gc_pause``).

The answers are the canned server's own (bench/_sse_server.py: meta, ``--tokens``
token events, done, with the session state the ledger checks), made in this
process by its ``TurnServer``; the CPU spent making them is measured and taken
out. Locust's request event and the socket I/O are not in the figure
(``bench/transport_cpu.py`` times the exchange).

To measure another checkout, run from inside it (the imports take the current
directory first)::

    (cd TREE && PYTHONPATH=TREE /work/main/.venv/bin/python /work/main/bench/session_cpu.py)
"""

from gevent import monkey

monkey.patch_all()

# ruff: noqa: E402 - everything below runs on the patched standard library
import argparse
import gc
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import _sse_server as canned

from loadlab.load.adapters import ReferenceAdapter
from loadlab.load.auth import SessionCredentials
from loadlab.load.client import AgentClient
from loadlab.load.in_flight import InFlightCounters
from loadlab.load.player import Attempt, SessionPlayer
from loadlab.load.transport import StreamingResponse
from loadlab.measure.live_status import LiveWindow, ObservedSink
from loadlab.measure.recorder import RunRecorder
from loadlab.measure.rundir import RunDirectory
from loadlab.scenario.files import parse_scenario
from loadlab.scenario.model import Scenario
from loadlab.scenario.script import plan_session

SECRET = "bench-session-cpu-" + "k" * 32  # an HS256 key of a realistic length


def parse_args() -> argparse.Namespace:
    """The command line (see --help)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=2_000, help="sessions a round (2000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (5); the median is shown")
    parser.add_argument("--tokens", type=int, default=8, help="token events per answer (8)")
    args = parser.parse_args()
    if args.sessions < 1 or args.rounds < 1 or args.tokens < 0:
        parser.error("need --sessions >= 1, --rounds >= 1, --tokens >= 0")
    return args


class CannedTransport:
    """Answers each turn with the canned server's response, played as one chunk."""

    def __init__(self, server: canned.TurnServer) -> None:
        self._server = server
        self.spent_s = 0.0  # CPU spent making the answers (not loadlab's)

    def open(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes, timeout: float
    ) -> StreamingResponse:
        """The server's whole answer to ``url`` (``/v1/sessions/{id}/turns``), de-chunked."""
        t0 = time.process_time()
        raw = self._server.turn_response(url[url.index("/v1/") :], body, True)
        rest = raw.partition(b"\r\n\r\n")[2]
        pieces: list[bytes] = []
        while True:
            size, _, rest = rest.partition(b"\r\n")
            length = int(size, 16)
            if not length:
                break
            pieces.append(rest[:length])
            rest = rest[length + 2 :]
        answer = StreamingResponse(200, {"content-type": "text/event-stream"}, _one(pieces))
        self.spent_s += time.process_time() - t0
        return answer


def _one(pieces: list[bytes]) -> Iterator[bytes]:
    yield b"".join(pieces)


def no_think_scenario(name: str) -> Scenario:
    """Sessions of 4-10 turns with no think time against the reference protocol."""
    return parse_scenario(
        {
            "name": name,
            "seed": 1,
            "target": {"protocol": "reference", "timeout_s": 10},
            "shape": {"kind": "soak", "users": 50, "ramp_s": 1, "duration_s": 20},
            "session": {
                "turns": {"min": 4, "max": 10},
                "think_time": {"distribution": "constant", "median_s": 0},
            },
        },
        f"bench ({name})",
    )


def new_player(
    scenario: Scenario,
    seed: int,
    session_id: str,
    client: AgentClient,
    sink: ObservedSink,
    *,
    sleep: Callable[[float], None],
    on_attempt: Callable[[Attempt], None] | None = None,
) -> SessionPlayer:
    """The player of the session ``seed`` plans, as loadlab's Locust user makes it."""
    return SessionPlayer(
        spec=plan_session(scenario, seed, session_id=session_id),
        client=client,
        retry=scenario.retry,
        sink=sink,
        credentials=SessionCredentials(secret=SECRET, session_id=session_id),
        sleep=sleep,
        on_attempt=on_attempt,
    )


def main() -> int:
    """Warm up, then the timed rounds; the recorder's buffers are written between rounds."""
    args = parse_args()
    scenario = no_think_scenario("bench_session_cpu")
    server = canned.TurnServer(latency_s=0.0, tokens=args.tokens, stats=canned.ServerStats())
    transport = CannedTransport(server)
    client = AgentClient(
        transport=transport,
        adapter=ReferenceAdapter(),
        base_url="http://127.0.0.1:1",
        timeout_s=10.0,
        live=InFlightCounters(),
    )
    seeds = itertools.count(1)
    with tempfile.TemporaryDirectory(prefix="loadlab-bench-session-cpu-") as tmp:
        recorder = RunRecorder(RunDirectory(Path(tmp) / "run"), parts="thread").start()
        sink = ObservedSink(recorder, LiveWindow())

        def play(sessions: int) -> int:
            turns = 0
            for _ in range(sessions):
                seed = next(seeds)
                session_id = f"bench-{seed:07d}"
                player = new_player(scenario, seed, session_id, client, sink, sleep=time.sleep)
                while not player.done:
                    record = player.play_next_turn(due=time.perf_counter())
                    if not record.ok:
                        raise RuntimeError(f"a turn failed: {record}")
                    turns += 1
                player.finish()
            return turns

        print(
            f"# bench/session_cpu.py --sessions {args.sessions} --rounds {args.rounds} "
            f"--tokens {args.tokens}"
        )
        play(200)  # warm-up: imports, caches
        recorder.flush()
        # As under Locust (loadlab.load.gc_pause): no cyclic collection while the load runs.
        gc.freeze()
        gc.disable()
        figures: list[float] = []
        for r in range(args.rounds):
            spent0, cpu0 = transport.spent_s, time.process_time()
            turns = play(args.sessions)
            cpu = time.process_time() - cpu0 - (transport.spent_s - spent0)
            figures.append(cpu / turns * 1e6)
            print(f"round {r + 1}: {figures[-1]:6.1f} us CPU per turn ({turns:,} turns)")
            recorder.flush()  # not timed: the rows leave the buffer, as each second under Locust
        rounds = ", ".join(f"{x:.1f}" for x in figures)
        print(f"median {statistics.median(figures):.1f} us CPU per turn ({rounds})")
        gc.enable()
        recorder.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
