"""Locust users (ShoppingSessionUser) against an agent answering 50 MB per turn; print JSON.

Run in its own process (it imports locust); see tests/hostile/test_hostile_agent.py.
The process's resident memory is sampled every 50 ms, from the moment the users
are about to start (the baseline) until TURNS turns have been recorded.

Usage: python locust_flood.py AGENT_URL JWT_SECRET USERS TURNS
"""

from __future__ import annotations

import json
import sys
import time

import gevent
import psutil
from locust.env import Environment

from loadlab.load.context import ListSink, LoadContext
from loadlab.load.users import ShoppingSessionUser
from loadlab.scenario import parse_scenario


def main() -> None:
    url, secret = sys.argv[1:3]
    users, turns = int(sys.argv[3]), int(sys.argv[4])
    scenario = parse_scenario(
        {
            "name": "flood",
            "time_scale": 0.01,
            "target": {"timeout_s": 10},
            "session": {
                "turns": {"min": 3, "max": 3},
                "think_time": {"distribution": "constant", "median_s": 1},
            },
        }
    )
    sink = ListSink()
    env = Environment(user_classes=[ShoppingSessionUser])
    env.loadlab = LoadContext(  # type: ignore[attr-defined]
        scenario=scenario, target_url=url, sink=sink, jwt_secret=secret, run_id="flood"
    )
    process = psutil.Process()
    runner = env.create_local_runner()
    baseline = peak = process.memory_info().rss

    def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, process.memory_info().rss)
            gevent.sleep(0.05)

    sampler = gevent.spawn(sample)
    runner.start(users, spawn_rate=users)
    deadline = time.monotonic() + 90
    while len(sink.turns) < turns and time.monotonic() < deadline:
        gevent.sleep(0.1)
    runner.quit()
    sampler.kill()
    recorded = [
        {"ok": t.ok, "answer_bytes": t.answer_bytes, "truncated": t.answer_truncated}
        for t in sink.turns
    ]
    print(json.dumps({"baseline_rss": baseline, "peak_rss": peak, "turns": recorded}))


if __name__ == "__main__":
    main()
