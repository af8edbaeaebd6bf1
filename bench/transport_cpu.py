"""CPU per HTTP exchange, without a sampling profiler: loadlab's transport vs Locust's request.

A sampling profiler counts a thread as busy while it waits for a CPU: on a busy
machine ``bench/efficiency.py --profile`` puts much of that wait in ``send``
(the request wakes the server, which takes the CPU). This script measures
process CPU time (``time.process_time``) instead, in one gevent process against
the canned SSE server (bench/_sse_server.py), ``--users`` greenlets each with a
pool of its own (as each Locust user has), no think time, the variants
alternated round by round. One exchange = one POST and its whole SSE answer:

* ``raw``: geventhttpclient's ``HTTPClient.request`` + ``read()``, no loadlab
  code: the floor under any transport on this client;
* ``transport``: loadlab's :class:`~loadlab.load.fasthttp.FastHttpTransport`
  (``open`` + the body's chunks);
* ``client``: loadlab's :class:`~loadlab.load.client.AgentClient` ``send_turn``
  over it (SSE parsed, events decoded, the turn's result built);
* ``locust``: Locust's ``FastHttpSession.iter_lines``, what
  bench/_plain_locustfile.py does per turn (its request event included).

To measure another checkout, run from inside it (``python -m`` and the imports
below take the current directory first)::

    (cd TREE && PYTHONPATH=TREE /work/main/.venv/bin/python /work/main/bench/transport_cpu.py)
"""

from gevent import monkey

monkey.patch_all()

# ruff: noqa: E402 - everything below runs on the patched standard library
import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import gevent
from geventhttpclient.url import URL
from locust.contrib.fasthttp import FastHttpSession
from locust.env import Environment

from loadlab.load.adapters import ReferenceAdapter, TurnRequest
from loadlab.load.client import AgentClient
from loadlab.load.fasthttp import FastHttpTransport
from loadlab.redact import Redactor

SERVER = Path(__file__).resolve().parent / "_sse_server.py"
TOKEN = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + "x" * 110  # shaped as a session JWT
MESSAGE = "Show me what's on sale today"
TURNS_PER_SESSION = 7

Worker = Callable[[str, int, str], None]


def parse_args() -> argparse.Namespace:
    """The command line (see --help)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50, help="concurrent greenlets (50)")
    parser.add_argument("--n", type=int, default=20_000, help="exchanges per variant a round")
    parser.add_argument("--rounds", type=int, default=4, help="rounds, variants alternated (4)")
    args = parser.parse_args()
    if args.users < 1 or args.n < args.users or args.rounds < 1:
        parser.error("need --users >= 1, --n >= --users, --rounds >= 1")
    return args


def _headers(session_id: str, turn: int) -> dict[str, str]:
    return {
        "Accept": "text/event-stream",
        "Content-Type": "application/json",
        "Idempotency-Key": f"{session_id}-t{turn}",
        "Authorization": f"Bearer {TOKEN}",
    }


def _body(turn: int) -> bytes:
    return json.dumps({"turn": turn, "message": MESSAGE}).encode()


def workers(base: str) -> dict[str, Worker]:
    """Each variant: ``work(tag, n, ...)`` plays ``n`` exchanges on a pool of its own."""
    env = Environment()

    def session() -> FastHttpSession:
        return FastHttpSession(
            base_url=base,
            request_event=env.events.request,
            user=None,
            network_timeout=60.0,
            connection_timeout=60.0,
            max_redirects=30,
            max_retries=0,
            concurrency=2,
        )

    def each(tag: str, n: int) -> list[tuple[str, int]]:
        return [(f"{tag}-{i // TURNS_PER_SESSION}", i % TURNS_PER_SESSION + 1) for i in range(n)]

    def raw(tag: str, n: int, _: str = "") -> None:
        pool, origin = session().client.clientpool, URL(base)
        for sid, turn in each(tag, n):
            path = f"/v1/sessions/{sid}/turns"
            answer = pool.get_client(origin).request(
                "POST", path, body=_body(turn), headers=_headers(sid, turn)
            )
            answer.read()
            answer.release()

    def transport(tag: str, n: int, _: str = "") -> None:
        http = FastHttpTransport(session().client.clientpool)
        for sid, turn in each(tag, n):
            url = f"{base}/v1/sessions/{sid}/turns"
            answer = http.open("POST", url, _headers(sid, turn), _body(turn), 30.0)
            for _chunk in answer.chunks:
                pass
            answer.close()

    def client(tag: str, n: int, _: str = "") -> None:
        agent = AgentClient(
            transport=FastHttpTransport(session().client.clientpool),
            adapter=ReferenceAdapter(),
            base_url=base,
            redactor=Redactor.from_env(),
        )
        for sid, turn in each(tag, n):
            request = TurnRequest(
                session_id=sid,
                turn_index=turn,
                message=MESSAGE,
                idempotency_key=f"{sid}-t{turn}",
                token=TOKEN,
            )
            result = agent.send_turn(request)
            if not result.ok:
                raise RuntimeError(f"a turn failed: {result}")

    def locust(tag: str, n: int, _: str = "") -> None:
        http = session()
        for sid, turn in each(tag, n):
            lines = http.iter_lines(
                f"/v1/sessions/{sid}/turns",
                method="POST",
                data=_body(turn),
                headers=_headers(sid, turn),
                name="turn",
            )
            for _line in lines:
                pass

    return {"raw": raw, "transport": transport, "client": client, "locust": locust}


def measure(work: Worker, name: str, users: int, n: int, round_: int) -> tuple[float, float]:
    """CPU microseconds per exchange and exchanges per second, ``users`` greenlets at once."""
    per = n // users
    cpu0, wall0 = time.process_time(), time.perf_counter()
    gevent.joinall(
        [gevent.spawn(work, f"{name}{round_}-{u}", per) for u in range(users)], raise_error=True
    )
    done = per * users
    return (time.process_time() - cpu0) / done * 1e6, done / (time.perf_counter() - wall0)


def alternated(
    workers: Mapping[str, Worker],
    names: Sequence[str],
    *,
    users: int,
    n: int,
    rounds: int,
    verbose: bool = True,
) -> dict[str, list[float]]:
    """CPU microseconds per exchange of each variant, a figure a round, the order rotated
    round by round. A worker with a ``flush`` (bench/opcodes.py's session, whose recorder
    writes in a child process under Locust) has it run after its measurement, untimed."""
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in [*names[r % len(names) :], *names[: r % len(names)]]:
            work = workers[name]
            per, rate = measure(work, name, users, n, r)
            getattr(work, "flush", lambda: None)()
            cpu[name].append(per)
            if verbose:
                print(f"round {r + 1} {name:9s} {per:6.1f} us CPU per exchange ({rate:,.0f}/s)")
    return cpu


def main() -> int:
    """Start the server, warm every variant up, then the alternated rounds."""
    args = parse_args()
    server = subprocess.Popen(
        [sys.executable, str(SERVER), "--procs", "1"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[1])
        variants = workers(f"http://127.0.0.1:{port}")
        names = list(variants)
        print(f"# bench/transport_cpu.py --users {args.users} --n {args.n} --rounds {args.rounds}")
        for name, work in variants.items():
            measure(work, name, args.users, 2_000, -1)  # warm-up: connections, imports
        cpu = alternated(variants, names, users=args.users, n=args.n, rounds=args.rounds)
        median = {name: statistics.median(values) for name, values in cpu.items()}
        for name in names:
            rounds = ", ".join(f"{x:.1f}" for x in cpu[name])
            print(f"{name:9s} median {median[name]:6.1f} us CPU per exchange ({rounds})")
        print(
            f"raw / locust {median['raw'] / median['locust']:.2f}; "
            f"transport / locust {median['transport'] / median['locust']:.2f}; "
            f"client / locust {median['client'] / median['locust']:.2f}"
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
