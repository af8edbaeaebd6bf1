"""Run ShoppingSessionUser under a Locust Environment for a few seconds; print JSON rows.

Run in its own process (it imports locust); see tests/load/test_load_locust.py.
Usage: python session_users.py AGENT_URL JWT_SECRET
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time

import gevent
from locust.env import Environment
from locust.runners import STATE_STOPPED

from loadlab.load.context import ListSink, LoadContext
from loadlab.load.shapes import ScenarioShape
from loadlab.load.users import ShoppingSessionUser
from loadlab.scenario import parse_scenario

SCENARIO = {
    "name": "locust-it",
    "seed": 99,
    "time_scale": 0.02,
    "shape": {"kind": "soak", "users": 8, "ramp_s": 0, "duration_s": 100},
    "session": {
        "turns": {"min": 3, "max": 5},
        "think_time": {"distribution": "uniform", "min_s": 5, "max_s": 15},
    },
    "retry": {"max_attempts": 4, "backoff_s": 0.5, "backoff_max_s": 2},
    "target": {"timeout_s": 5},
}


def main() -> None:
    url, secret = sys.argv[1:3]
    sink = ListSink()
    env = Environment(user_classes=[ShoppingSessionUser], shape_class=ScenarioShape())
    env.loadlab = LoadContext(  # type: ignore[attr-defined]
        scenario=parse_scenario(SCENARIO),
        target_url=url,
        sink=sink,
        jwt_secret=secret,
        run_id="it",
        worker_id="w1",
    )
    user_errors: list[str] = []
    env.events.user_error.add_listener(
        lambda user_instance, exception, tb: user_errors.append(repr(exception))
    )
    runner = env.create_local_runner()
    runner.start_shape()
    deadline = time.monotonic() + 30
    while runner.state != STATE_STOPPED and time.monotonic() < deadline:
        gevent.sleep(0.1)
    stopped = runner.state == STATE_STOPPED
    runner.quit()
    total = env.stats.total
    print(
        json.dumps(
            {
                "stopped_by_shape": stopped,
                "user_errors": user_errors,
                "stats": {
                    "requests": total.num_requests,
                    "failures": total.num_failures,
                    "entries": sorted(f"{k[1]}:{k[0]}" for k in env.stats.entries),
                    "errors": sorted(str(e.error) for e in env.stats.errors.values()),
                },
                "requests": [dataclasses.asdict(r) for r in sink.requests],
                "turns": [dataclasses.asdict(r) for r in sink.turns],
                "sessions": [dataclasses.asdict(r) for r in sink.sessions],
            }
        )
    )


if __name__ == "__main__":
    main()
