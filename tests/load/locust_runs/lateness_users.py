"""Shoppers under a Locust Environment for a few seconds, into a real run directory.

With ``blocked``, one more user (``LoopBlocker``) stops the whole gevent loop for
200 ms every 300 ms, as a harness stall would (a long garbage collection, a
conversion holding the GIL): the shoppers' turns due meanwhile go out late.
With ``normal`` the shoppers run alone.

Run in its own process (it imports locust); see tests/load/test_load_locust.py.
Usage: python lateness_users.py AGENT_URL JWT_SECRET RUN_DIR blocked|normal
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import gevent
from gevent import monkey
from locust import User, constant, task
from locust.env import Environment

from loadlab.load.context import LoadContext
from loadlab.load.users import ShoppingSessionUser
from loadlab.measure.recorder import RunRecorder
from loadlab.measure.rundir import RunDirectory, RunManifest
from loadlab.scenario import parse_scenario

SHOPPERS = 20
RUN_S = 4.0
BLOCK_S = 0.2
SCENARIO = {
    "name": "lateness-it",
    "seed": 5,
    "time_scale": 0.02,
    "session": {
        "turns": {"min": 3, "max": 5},
        "think_time": {"distribution": "uniform", "min_s": 5, "max_s": 15},
    },
    "retry": {"max_attempts": 4, "backoff_s": 0.5, "backoff_max_s": 2},
    "target": {"timeout_s": 5},
}

# locust patched time.sleep into a gevent sleep; the blocker needs the real one
_blocking_sleep = monkey.get_original("time", "sleep")


class LoopBlocker(User):
    """Holds the gevent loop (no greenlet runs) for BLOCK_S, every 0.3 s."""

    fixed_count = 1
    wait_time = constant(0.3)

    @task
    def block(self) -> None:
        _blocking_sleep(BLOCK_S)


def main() -> None:
    url, secret, run_path, mode = sys.argv[1:5]
    path = Path(run_path)
    path.mkdir(parents=True)
    run_dir = RunDirectory(path)
    started = time.time()
    manifest = RunManifest(
        run_id="lateness",
        name=f"lateness-{mode}",
        started_at=started,
        scenario_path=None,
        scenario_sha256=None,
        scenario={},
        target={"url": url},
        versions={},
        seed=5,
    )
    run_dir.write_manifest(manifest)
    classes: list[type[User]] = [ShoppingSessionUser]
    if mode == "blocked":
        classes.append(LoopBlocker)
    with RunRecorder(run_dir) as recorder:
        env = Environment(user_classes=classes)
        env.loadlab = LoadContext(  # type: ignore[attr-defined]
            scenario=parse_scenario(SCENARIO),
            target_url=url,
            sink=recorder,
            jwt_secret=secret,
            run_id="lateness",
            worker_id="w1",
        )
        runner = env.create_local_runner()
        users = SHOPPERS + (mode == "blocked")
        runner.start(users, spawn_rate=users * 4)
        gevent.sleep(RUN_S)
        runner.quit()
    run_dir.write_manifest(
        dataclasses.replace(manifest, ended_at=time.time(), end_reason="finished")
    )


if __name__ == "__main__":
    main()
