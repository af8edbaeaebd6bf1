"""Run LambdaSessionUser under a Locust Environment for a few seconds; print JSON rows.

Run in its own process (it imports locust, which monkey-patches the standard
library with gevent); see tests/load/test_lambda_transport.py.
Usage: python lambda_users.py LAMBDA_ENDPOINT FUNCTION JWT_SECRET
(AWS credentials come from the environment.)
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time

import gevent
from locust.env import Environment
from locust.runners import STATE_STOPPED

from loadlab.load.aws_lambda.users import LambdaSessionUser
from loadlab.load.context import ListSink, LoadContext
from loadlab.load.shapes import ScenarioShape
from loadlab.rows import PressureSample
from loadlab.scenario import parse_scenario


def scenario(function: str) -> dict[str, object]:
    return {
        "name": "lambda-locust-it",
        "seed": 7,
        "time_scale": 0.02,
        # 12 s: four cold starts at once take 2-5 s on two busy cores.
        "shape": {"kind": "soak", "users": 4, "ramp_s": 0, "duration_s": 600},
        "session": {
            "turns": {"min": 2, "max": 3},
            "think_time": {"distribution": "uniform", "min_s": 5, "max_s": 10},
        },
        "retry": {"max_attempts": 3, "backoff_s": 0.5, "backoff_max_s": 2},
        "target": {"protocol": "lambda", "function": function, "timeout_s": 30},
    }


def main() -> None:
    endpoint, function, secret = sys.argv[1:4]
    sink = ListSink()
    env = Environment(user_classes=[LambdaSessionUser], shape_class=ScenarioShape())
    env.loadlab = LoadContext(  # type: ignore[attr-defined]
        scenario=parse_scenario(scenario(function)),
        target_url=endpoint,
        sink=sink,
        jwt_secret=secret,
        run_id="lit",
        worker_id="w1",
    )
    user_errors: list[str] = []
    env.events.user_error.add_listener(
        lambda user_instance, exception, tb: user_errors.append(repr(exception))
    )
    runner = env.create_local_runner()
    runner.start_shape()
    deadline = time.monotonic() + 60
    while runner.state != STATE_STOPPED and time.monotonic() < deadline:
        gevent.sleep(0.1)
    stopped = runner.state == STATE_STOPPED
    runner.quit()
    total = env.stats.total
    pressure = [r for r in sink.rows if isinstance(r, PressureSample)]
    print(
        json.dumps(
            {
                "stopped_by_shape": stopped,
                "user_errors": user_errors,
                "locust_requests": total.num_requests,
                "locust_failures": total.num_failures,
                "requests": [dataclasses.asdict(r) for r in sink.requests],
                "turns": [dataclasses.asdict(r) for r in sink.turns],
                "sessions": [dataclasses.asdict(r) for r in sink.sessions],
                "pressure": [dataclasses.asdict(r) for r in pressure],
            }
        )
    )


if __name__ == "__main__":
    main()
