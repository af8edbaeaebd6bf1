"""Real parts for the continuity-oracle tests: a stack on its own thread, a Locust run,
and pod kills aimed at turns in flight.

* :class:`StackThread` runs an :class:`~loadlab.embedded.stack.EmbeddedStack` on a
  thread and event loop of its own (its children die with the thread that spawned
  them, so that thread lives until the stack is stopped) and runs coroutines on it.
* :func:`turns_in_flight` asks each agent pod how many turns it is serving. The pods
  share one port, so each fresh connection lands on one of them: ``/healthz`` names
  the pod and ``/metrics`` on the *same* keep-alive connection gives its gauge.
* :func:`kill_busy_pods` SIGKILLs the busiest pod whenever it has turns in flight,
  a few times during a run, and says what it killed.
* :func:`run_locust` starts the Locust run that plays the sessions.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import boto3
from prometheus_client.parser import text_string_to_metric_families

from loadlab.embedded.stack import EmbeddedStack

REPO = Path(__file__).resolve().parents[2]
LOCUSTFILE = REPO / "loadlab" / "locustfile.py"
IN_FLIGHT = "loadlab_agent_turns_in_flight"

_T = TypeVar("_T")


class StackThread:
    """An embedded stack started, served and stopped on its own thread and loop."""

    def __init__(self, stack: EmbeddedStack) -> None:
        self.stack = stack
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="embedded-stack", daemon=True)
        self._started = threading.Event()
        self._failure: BaseException | None = None

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.stack.start())
        except BaseException as exc:
            self._failure = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.stack.stop())

    def start(self, *, timeout_s: float = 120.0) -> None:
        """Start the stack; raise what it raised, or AssertionError after ``timeout_s``."""
        self._thread.start()
        assert self._started.wait(timeout_s), f"the stack did not start within {timeout_s} s"
        if self._failure is not None:
            raise self._failure

    def stop(self, *, timeout_s: float = 60.0) -> None:
        """Stop the stack (idempotent) and close the loop."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout_s)
            assert not self._thread.is_alive(), f"the stack did not stop within {timeout_s} s"
        if not self._loop.is_closed():
            self._loop.close()

    def call(self, coro: Coroutine[Any, Any, _T], *, timeout_s: float = 30.0) -> _T:
        """Run ``coro`` on the stack's loop and return its result (bounded)."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    @property
    def stack_file(self) -> dict[str, Any]:
        """The stack's ``stack.json`` (endpoints, JWT secret, AWS keys)."""
        data: dict[str, Any] = json.loads(self.stack.stack_file.read_text())
        return data

    def ready_pods(self) -> list[str]:
        """Names of the pods that are ready and not being deleted."""

        async def names() -> list[str]:
            return [pod.name for pod in self.stack.fleet.ready_pods()]

        return self.call(names())

    def wait_ready(self, *, count: int, timeout_s: float) -> None:
        """Wait until ``count`` pods are ready (replacements of killed ones included)."""
        wait = self.stack.fleet.wait_ready(timeout_s=timeout_s, count=count)
        self.call(wait, timeout_s=timeout_s + 5)

    def kill_pod(self, name: str) -> None:
        """SIGKILL a pod now (grace period 0); the fleet replaces it."""
        self.call(self.stack.fleet.delete_pod(name, grace_period_seconds=0))

    def checkpoint_items(self, session_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Read the sessions' checkpoint items from DynamoDB (out of band)."""
        data = self.stack_file
        aws = data["aws"]
        client = boto3.client(
            "dynamodb",
            endpoint_url=aws["endpoint_url"],
            region_name=aws["region"],
            aws_access_key_id=aws["access_key_id"],
            aws_secret_access_key=aws["secret_access_key"],
        )
        table = data["endpoints"]["table"]
        items: dict[str, dict[str, Any]] = {}
        try:
            for sid in session_ids:
                got = client.get_item(
                    TableName=table, Key={"session_id": {"S": sid}}, ConsistentRead=True
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
    agent_url = stack.stack_file["endpoints"]["agent_url"]
    deadline = time.monotonic() + deadline_s
    done: list[Kill] = []
    while len(done) < kills and locust.poll() is None and time.monotonic() < deadline:
        stack.wait_ready(count=min_ready, timeout_s=restart_timeout_s)
        ready = set(stack.ready_pods())
        busy = turns_in_flight(agent_url, pods=ready)
        busy = {pod: n for pod, n in busy.items() if pod in ready}
        pod = max(busy, key=lambda p: busy[p], default=None)
        if pod is None or busy[pod] < min_in_flight:
            time.sleep(0.05)  # polling: in-flight turns have no event to await
            continue
        ordered = time.time()
        stack.kill_pod(pod)
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
