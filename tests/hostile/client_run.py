"""Send turns to the hostile agent with the Locust-side client; print JSON results and memory.

Run in its own process (importing locust patches gevent in, as in a Locust
process); see tests/hostile/test_hostile_agent.py. The process's resident memory
is sampled every 50 ms from after the imports (the baseline) to the end.

Usage: python client_run.py AGENT_URL MODE USERS TURNS TIMEOUT_S DEADLINE_S ANSWER_KIB EVENT_KIB
"""

from __future__ import annotations

import json
import sys
import time

import gevent
import locust  # noqa: F401  (a Locust process: gevent patched, locust's imports in the baseline)
import psutil

from loadlab.load.adapters import ReferenceAdapter, TurnRequest
from loadlab.load.client import AgentClient
from loadlab.load.fasthttp import FastHttpTransport


def main() -> None:
    url, mode = sys.argv[1:3]
    users, turns = int(sys.argv[3]), int(sys.argv[4])
    timeout_s, deadline_s = float(sys.argv[5]), float(sys.argv[6])
    answer_kib, event_kib = int(sys.argv[7]), int(sys.argv[8])
    process = psutil.Process()
    transport = FastHttpTransport(
        connection_timeout=2.0, network_timeout=timeout_s + 5.0, concurrency=users
    )
    client = AgentClient(
        transport=transport,
        adapter=ReferenceAdapter(),
        base_url=url,
        timeout_s=timeout_s,
        turn_deadline_s=deadline_s,
        max_answer_bytes=answer_kib * 1024,
        max_event_bytes=event_kib * 1024,
    )
    baseline = process.memory_info().rss
    peak = baseline
    kept: list[object] = []  # what a session keeps of its answers (its history)

    def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, process.memory_info().rss)
            gevent.sleep(0.05)

    def user(n: int) -> None:
        sid = f"{mode}-{n}"
        for turn in range(1, turns + 1):
            started = time.monotonic()
            result = client.send_turn(
                TurnRequest(
                    session_id=sid, turn_index=turn, message="hi", idempotency_key=f"{sid}-t{turn}"
                )
            )
            kept.append(result)
            results.append(
                {
                    "error_kind": result.error_kind,
                    "error": result.error,
                    "tokens": result.tokens,
                    "bytes": result.bytes,
                    "answer_bytes": result.answer_bytes,
                    "kept": len(result.text.encode()),
                    "truncated": result.truncated,
                    "wall_s": time.monotonic() - started,
                }
            )

    results: list[dict[str, object]] = []
    sampler = gevent.spawn(sample)
    gevent.joinall([gevent.spawn(user, n) for n in range(users)])
    sampler.kill()
    peak = max(peak, process.memory_info().rss)
    print(json.dumps({"baseline_rss": baseline, "peak_rss": peak, "results": results}))


if __name__ == "__main__":
    main()
