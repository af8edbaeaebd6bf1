"""SnapStart and in-handler initialisation on the embedded Lambda (a real stack, one function).

The same function first starts its environments from the snapshot, then (its
``LOADLAB_SNAPSTART_SOCKET`` removed, which recycles every environment) from
scratch: the restores must be shorter than the on-demand inits. Then, with
``LOADLAB_AGENT_INIT=handler``, every invocation of one environment pays the
initialisation again.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from lambda_support import new_session_id, one, sse_events, token_for
from stack_thread import StackThread  # tests/stack_thread.py

from loadlab.embedded.aws_lambda.deploy import LambdaOptions, lambda_client, wait_until_ready
from loadlab.embedded.aws_lambda.snapstart import SOCKET_ENV
from loadlab.embedded.stack import EmbeddedStack

pytestmark = pytest.mark.integration
INIT_MS = 10000.0
TIME_SCALE = 0.1
"""The simulated init delay: 1 s, beside the real imports and clients."""
ENVIRONMENTS = 3


def turn(client: Any, function: str, secret: str, session: str, number: int) -> dict[str, Any]:
    event = {
        "session_id": session,
        "turn": number,
        "message": "Add P-0042 to my cart",
        "idempotency_key": f"{session}-t{number}",
        "token": token_for(session, secret=secret),
    }
    response = client.invoke(FunctionName=function, Payload=json.dumps(event).encode())
    payload = json.loads(response["Payload"].read())
    assert payload.get("statusCode") == 200, payload
    return one(sse_events(payload["body"]), "meta")


def burst(client: Any, function: str, secret: str) -> list[dict[str, Any]]:
    """``ENVIRONMENTS`` concurrent first turns: one new environment each."""
    with ThreadPoolExecutor(ENVIRONMENTS) as pool:
        metas = list(
            pool.map(lambda _: turn(client, function, secret, new_session_id(), 1), range(3))
        )
    assert all(meta["cold"] for meta in metas), metas
    return metas


def reconfigure(client: Any, function: str, **changes: str | None) -> None:
    """Change the function's variables (ministack then recycles every environment)."""
    variables = dict(
        client.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
    )
    for name, value in changes.items():
        if value is None:
            variables.pop(name, None)
        else:
            variables[name] = value
    client.update_function_configuration(
        FunctionName=function, Environment={"Variables": variables}
    )
    wait_until_ready(client, function)


def keeper_processes(socket_path: str) -> list[int]:
    """Live processes started with this socket (the keeper and the children it forked)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if socket_path.encode() in cmdline and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def test_restores_beat_inits_and_handler_init_is_paid_every_turn(tmp_path: Path) -> None:
    stack = EmbeddedStack(
        replicas=1,
        time_scale=TIME_SCALE,
        agent_init_ms=INIT_MS,
        state_dir=tmp_path / "state",
        lambda_function=True,
        lambda_options=LambdaOptions(snapstart=True, function_url=False),
    )
    with StackThread(stack) as running:
        state = running.state
        function = state.endpoints.lambda_function
        assert function is not None
        client = lambda_client(
            endpoint_url=state.endpoints.aws_endpoint_url,
            region=state.endpoints.region,
            access_key_id="loadlab",
            secret_access_key="loadlab-local",
        )
        try:
            config = client.get_function_configuration(FunctionName=function)
            assert config["SnapStart"]["ApplyOn"] == "PublishedVersions"
            socket_path = config["Environment"]["Variables"][SOCKET_ENV]
            assert keeper_processes(socket_path), "the snapshot keeper is not running"
            restored = burst(client, function, state.jwt_secret)

            reconfigure(client, function, **{SOCKET_ENV: None})
            initialised = burst(client, function, state.jwt_secret)

            reconfigure(client, function, LOADLAB_AGENT_INIT="handler")
            session = new_session_id()
            per_turn = [turn(client, function, state.jwt_secret, session, n) for n in (1, 2, 3)]
        finally:
            client.close()

    # The keeper and every environment it forked stop with the stack.
    assert keeper_processes(socket_path) == []
    assert not Path(socket_path).parent.exists()

    restore_ms = [m["init_ms"] for m in restored]
    init_ms = [m["init_ms"] for m in initialised]
    assert len({m["instance_id"] for m in restored}) == ENVIRONMENTS
    assert max(restore_ms) < min(init_ms), (restore_ms, init_ms)
    # The snapshot holds the simulated init delay; an on-demand init pays it.
    assert min(init_ms) >= INIT_MS * TIME_SCALE
    assert max(restore_ms) < INIT_MS * TIME_SCALE

    assert [m["cold"] for m in per_turn] == [True, False, False]
    assert len({m["instance_id"] for m in per_turn}) == 1
    # Every invocation initialised anew: each reports its own init, delay included.
    assert all(m["init_ms"] >= INIT_MS * TIME_SCALE for m in per_turn), per_turn
    assert len({m["init_ms"] for m in per_turn}) == 3
