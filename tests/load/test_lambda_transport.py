"""The Lambda transport and LambdaSessionUser against the embedded stack's Lambda function.

One embedded stack (ministack + LLM simulator + one pod + the agent deployed as
a Lambda function in ministack, every latency compressed 20x) serves the module;
it runs on its own thread and event loop, which also stops it (``StackThread``).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from stack_thread import StackThread  # tests/stack_thread.py

from loadlab.embedded.aws_lambda.deploy import LOCAL_RESERVED_CONCURRENCY, LambdaOptions
from loadlab.embedded.stack import EmbeddedStack
from loadlab.load.adapters import ReferenceAdapter, TurnRequest
from loadlab.load.auth import SessionCredentials
from loadlab.load.aws_lambda.invoke import LambdaInvocation, LambdaTransport, invoke_client
from loadlab.load.client import AgentClient
from loadlab.load.context import ListSink
from loadlab.load.player import SessionPlayer
from loadlab.scenario import parse_scenario
from loadlab.scenario.script import plan_session

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RUNS = Path(__file__).resolve().parent / "locust_runs"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "loadlab", "AWS_SECRET_ACCESS_KEY": "loadlab-local"}


@dataclass(frozen=True)
class LambdaStack:
    aws_url: str
    function: str
    jwt_secret: str


@pytest.fixture(scope="module")
def lambda_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LambdaStack]:
    stack = EmbeddedStack(
        replicas=1,
        time_scale=0.05,
        startup_delay_s=0,
        state_dir=tmp_path_factory.mktemp("lambda-stack"),
        lambda_function=True,
        lambda_options=LambdaOptions(function_url=False),
    )
    with StackThread(stack, name="lambda-stack") as running:
        state = running.state
        assert state.lambda_function is not None
        assert state.lambda_function.reserved_concurrency == LOCAL_RESERVED_CONCURRENCY
        assert state.endpoints.lambda_url is None  # function_url=False
        try:
            yield LambdaStack(
                aws_url=state.aws.endpoint_url,
                function=state.lambda_function.function_name,
                jwt_secret=state.jwt_secret,
            )
        finally:
            # ministack's children are the function's environments: none may outlive the stack.
            pids = running.child_pids()
    assert len(pids) > 3 and not [pid for pid in pids if process_alive(pid)]


def process_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


@pytest.fixture
def lambda_api(lambda_stack: LambdaStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    client = invoke_client(endpoint_url=lambda_stack.aws_url, timeout_s=30)
    yield client
    client.close()


SCENARIO = parse_scenario(
    {
        "name": "lambda-transport",
        "seed": 3,
        "time_scale": 0.01,
        "session": {"turns": {"min": 4, "max": 4}},
        "target": {"protocol": "lambda", "function": "loadlab-agent"},
    }
)


def test_a_session_through_lambda_keeps_its_ledger_cold_then_warm(
    lambda_stack: LambdaStack, lambda_api: Any
) -> None:
    invocations: list[LambdaInvocation] = []
    transport = LambdaTransport(
        client=lambda_api, function=lambda_stack.function, on_invocation=invocations.append
    )
    agent = AgentClient(
        transport=transport, adapter=ReferenceAdapter(), base_url=lambda_stack.aws_url
    )
    sink = ListSink()
    session_id = "lambda-transport-s1"
    player = SessionPlayer(
        spec=plan_session(SCENARIO, 11, session_id=session_id),
        client=agent,
        retry=SCENARIO.retry,
        sink=sink,
        credentials=SessionCredentials(secret=lambda_stack.jwt_secret, session_id=session_id),
        sleep=lambda _s: None,
    )
    while not player.done:
        player.play_next_turn()
    record = player.finish()

    assert record is not None and record.verdict == "clean", record
    assert record.turns_done == 4
    turns = sink.turns
    assert [t.ok for t in turns] == [True] * 4
    assert [t.state_turn for t in turns] == [1, 2, 3, 4]
    requests = sink.requests
    assert [r.cold_start for r in requests] == [True, False, False, False]
    assert requests[0].init_ms is not None and requests[0].init_ms > 0
    assert len({r.instance_id for r in requests}) == 1
    assert [i.figures for i in invocations] == ["agent"] * 4
    assert [i.cold_start for i in invocations] == [True, False, False, False]
    assert [i.turn_index for i in invocations] == [1, 2, 3, 4]
    assert all(i.status == 200 and i.session_id == session_id for i in invocations)


def test_reserved_concurrency_zero_is_a_throttled_turn(
    lambda_stack: LambdaStack, lambda_api: Any
) -> None:
    invocations: list[LambdaInvocation] = []
    agent = AgentClient(
        transport=LambdaTransport(
            client=lambda_api, function=lambda_stack.function, on_invocation=invocations.append
        ),
        adapter=ReferenceAdapter(),
        base_url=lambda_stack.aws_url,
    )
    credentials = SessionCredentials(secret=lambda_stack.jwt_secret, session_id="throttled-1")
    request = TurnRequest(
        session_id="throttled-1",
        turn_index=1,
        message="Show me running shoes",
        idempotency_key="throttled-1-t1",
        token=credentials.token(time.time()),
    )
    lambda_api.put_function_concurrency(
        FunctionName=lambda_stack.function, ReservedConcurrentExecutions=0
    )
    try:
        result = agent.send_turn(request)
    finally:
        lambda_api.put_function_concurrency(
            FunctionName=lambda_stack.function,
            ReservedConcurrentExecutions=LOCAL_RESERVED_CONCURRENCY,
        )
    assert (result.error_kind, result.status, result.retry_after_s) == ("throttled", 429, 1.0)
    assert invocations[0].throttled
    assert agent.send_turn(request).ok  # the limit lifted, the same turn goes through


def test_locust_users_invoke_concurrently_under_gevent(lambda_stack: LambdaStack) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(RUNS / "lambda_users.py"),
            lambda_stack.aws_url,
            lambda_stack.function,
            lambda_stack.jwt_secret,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
        env={**os.environ, **CREDENTIALS, "AWS_DEFAULT_REGION": "us-east-1"},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout)
    assert out["stopped_by_shape"] and out["user_errors"] == []
    requests, sessions = out["requests"], out["sessions"]
    assert requests and out["locust_requests"] == len(requests)
    assert out["locust_failures"] == sum(r["error_kind"] is not None for r in requests) == 0
    verdicts = Counter(s["verdict"] for s in sessions)
    assert set(verdicts) <= {"clean"} and verdicts["clean"] >= 4, verdicts
    # Four shoppers start at once: with boto3 cooperative under gevent their
    # invocations overlap in time, and Lambda gives each its own environment.
    spans = sorted((r["t_start"], r["t_start"] + r["latency_ms"] / 1000) for r in requests)
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))
    instances = {r["instance_id"] for r in requests}
    assert len(instances) >= 2, instances
    # One cold start per new environment (one may still be warm from an earlier test).
    cold = [r["instance_id"] for r in requests if r["cold_start"]]
    assert len(set(cold)) == len(cold) >= len(instances) - 1
    metrics = Counter(p["metric"] for p in out["pressure"] if p["source"] == "lambda")
    assert metrics["invoke_ms"] == len(requests) and metrics["cold_start"] == len(requests)
    assert metrics["init_ms"] == len(cold)
