"""Real parts for the continuity-oracle tests: the fleet of a stack run on its own thread,
a Locust run, and pod kills aimed at turns in flight.

* :func:`ready_pods`, :func:`wait_ready` and :func:`kill_pod` act on the fleet of a
  :class:`~stack_thread.StackThread` (on the stack's own loop), and
  :func:`checkpoint_items` reads the sessions' items from its DynamoDB.
* :func:`turns_in_flight` asks each agent pod how many turns it is serving. The pods
  share one port, so each fresh connection lands on one of them: ``/healthz`` names
  the pod and ``/metrics`` on the *same* keep-alive connection gives its gauge.
* :func:`kill_busy_pods` SIGKILLs the busiest pod whenever it has turns in flight,
  a few times during a run, and says what it killed.
* :func:`run_locust` starts the Locust run that plays the sessions.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from prometheus_client.parser import text_string_to_metric_families
from stack_thread import StackThread  # tests/stack_thread.py

REPO = Path(__file__).resolve().parents[2]
LOCUSTFILE = REPO / "loadlab" / "app" / "locustfile.py"
IN_FLIGHT = "loadlab_agent_turns_in_flight"


def ready_pods(stack: StackThread) -> list[str]:
    """Names of the pods that are ready and not being deleted."""

    async def names() -> list[str]:
        return [pod.name for pod in stack.stack.fleet.ready_pods()]

    return stack.call(names())


def wait_ready(stack: StackThread, *, count: int, timeout_s: float) -> None:
    """Wait until ``count`` pods are ready (replacements of killed ones included)."""
    wait = stack.stack.fleet.wait_ready(timeout_s=timeout_s, count=count)
    stack.call(wait, timeout_s=timeout_s + 5)


def kill_pod(stack: StackThread, name: str) -> None:
    """SIGKILL a pod now (grace period 0); the fleet replaces it."""
    stack.call(stack.stack.fleet.delete_pod(name, grace_period_seconds=0))


def checkpoint_items(stack: StackThread, session_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Read the sessions' checkpoint items from DynamoDB (out of band)."""
    state = stack.state
    client = boto3.client(
        "dynamodb",
        endpoint_url=state.aws.endpoint_url,
        region_name=state.aws.region,
        aws_access_key_id=state.aws.access_key_id,
        aws_secret_access_key=state.aws.secret_access_key,
    )
    items: dict[str, dict[str, Any]] = {}
    try:
        for sid in session_ids:
            got = client.get_item(
                TableName=state.endpoints.table,
                Key={"session_id": {"S": sid}},
                ConsistentRead=True,
            )
            if "Item" in got:
                items[sid] = got["Item"]
    finally:
        client.close()
    return items


def turns_in_flight(
    agent_url: str, *, pods: set[str], max_connections: int = 24, timeout_s: float = 2.0
) -> dict[str, float]:
    """Turns each pod is serving now, for as many of ``pods`` as fresh connections reach."""
    parts = urlsplit(agent_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    seen: dict[str, float] = {}
    for _ in range(max_connections):
        conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
        try:
            conn.request("GET", "/healthz")
            pod = json.loads(conn.getresponse().read())["instance_id"]
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
        except (OSError, http.client.HTTPException, ValueError, KeyError):
            continue  # a pod dying under the probe; the next connection finds another
        finally:
            conn.close()
        for family in text_string_to_metric_families(text):
            if family.name == IN_FLIGHT:
                seen[pod] = sum(sample.value for sample in family.samples)
        if pods <= seen.keys():
            break
    return seen


@dataclass(frozen=True, slots=True)
class Kill:
    """One pod killed (ordered at epoch ``t``) while it was serving ``in_flight`` turns."""

    t: float
    pod: str
    in_flight: float


def kill_busy_pods(
    stack: StackThread,
    *,
    locust: subprocess.Popen[bytes],
    kills: int,
    min_in_flight: int,
    interval_s: float,
    deadline_s: float,
    min_ready: int = 2,
    restart_timeout_s: float = 30.0,
) -> list[Kill]:
    """Kill the busiest pod ``kills`` times, each when it serves >= ``min_in_flight`` turns.

    A pod is killed only while ``min_ready`` are ready, so a survivor always takes
    the retries; between kills the sessions get ``interval_s`` to retry and play
    on. Stops early when Locust exits or ``deadline_s`` (seconds from now) passes.
    """
    agent_url = stack.state.endpoints.agent_url
    deadline = time.monotonic() + deadline_s
    done: list[Kill] = []
    while len(done) < kills and locust.poll() is None and time.monotonic() < deadline:
        wait_ready(stack, count=min_ready, timeout_s=restart_timeout_s)
        ready = set(ready_pods(stack))
        busy = turns_in_flight(agent_url, pods=ready)
        busy = {pod: n for pod, n in busy.items() if pod in ready}
        pod = max(busy, key=lambda p: busy[p], default=None)
        if pod is None or busy[pod] < min_in_flight:
            time.sleep(0.05)  # polling: in-flight turns have no event to await
            continue
        ordered = time.time()
        kill_pod(stack, pod)
        done.append(Kill(t=ordered, pod=pod, in_flight=busy[pod]))
        time.sleep(interval_s)  # let the interrupted sessions retry and play on
    return done


def run_locust(
    *, scenario: Path, host: str, run_dir: Path, jwt_secret: str, log: Path
) -> subprocess.Popen[bytes]:
    """Start a headless Locust run of ``scenario`` against ``host`` (its shape ends it).

    Its output goes to ``log``: a pipe nobody reads while pods are killed could fill up.
    """
    env = os.environ | {"LOADLAB_JWT_SECRET": jwt_secret}
    argv = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
        "--scenario", str(scenario), "--host", host, "--run-dir", str(run_dir),
        "--progress-interval", "0", "--loglevel", "WARNING",
    ]  # fmt: skip
    with log.open("wb") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
