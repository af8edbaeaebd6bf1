"""Deploy the zip into a real ministack and invoke it: directly, by Function URL, after faults.

These tests also pin down the ministack behaviours loadlab relies on (see the
docstring of loadlab.embedded.aws_lambda.deploy): a cold start per new
environment, the tail log without a REPORT line, recycling by configuration,
throttling by reserved concurrency.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lambda_support import SECRET, new_session_id, one, sse_events, token_for, turn_event

from loadlab.embedded.aws_lambda.deploy import (
    LOCAL_RESERVED_CONCURRENCY,
    DeployedFunction,
    FunctionSpec,
    agent_environment,
    deploy_function,
    lambda_client,
    wait_until_ready,
)
from loadlab.embedded.aws_lambda.package import Package
from loadlab.load.aws_lambda.log_report import report_from_log_result

pytestmark = pytest.mark.integration
FUNCTION = "loadlab-agent-test"


@pytest.fixture(scope="module")
def client(ministack: str) -> Iterator[Any]:
    lambda_api = lambda_client(
        endpoint_url=ministack, region="us-east-1", access_key_id="t", secret_access_key="t"
    )
    yield lambda_api
    lambda_api.close()


def spec(ministack: str, llm_url: str, table: str) -> FunctionSpec:
    return FunctionSpec(
        name=FUNCTION,
        timeout_s=20,
        reserved_concurrency=LOCAL_RESERVED_CONCURRENCY,
        function_url=True,
        environment=agent_environment(
            jwt_secret=SECRET,
            llm_url=llm_url,
            table=table,
            dynamodb_endpoint=ministack,
            aws_endpoint_url=ministack,
            time_scale=0.01,
        ),
    )


@pytest.fixture(scope="module")
def deployed(
    client: Any, package: Package, ministack: str, llm_url: str, table: str
) -> DeployedFunction:
    function = deploy_function(
        client, spec(ministack, llm_url, table), package.read(), endpoint_url=ministack
    )
    assert function.created
    return function


def invoke(client: Any, event: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    response = client.invoke(
        FunctionName=FUNCTION, Payload=json.dumps(event).encode(), LogType="Tail"
    )
    return response, json.loads(response["Payload"].read())


def process_exited(pid: int) -> bool:
    """Gone, or a zombie whose every thread has exited (so its parent can reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        threads = len(list(Path(f"/proc/{pid}/task").iterdir()))
    except FileNotFoundError:
        return True
    return state in ("Z", "X") and threads <= 1


def meta_of(payload: dict[str, Any]) -> dict[str, Any]:
    assert payload["statusCode"] == 200, payload
    return one(sse_events(payload["body"]), "meta")


def test_deployed_active_with_its_limits(client: Any, deployed: DeployedFunction) -> None:
    config = client.get_function_configuration(FunctionName=FUNCTION)
    assert config["State"] == "Active" and config["Handler"] == (
        "loadlab.embedded.aws_lambda.handler.handler"
    )
    reserved = client.get_function_concurrency(FunctionName=FUNCTION)
    assert reserved["ReservedConcurrentExecutions"] == LOCAL_RESERVED_CONCURRENCY
    assert deployed.url is not None and "/_aws/lambda-url/" in deployed.url
    assert "LOADLAB_JWT_SECRET" not in repr(spec("x", "y", "z"))


def test_direct_invocations_cold_then_warm(client: Any, deployed: DeployedFunction) -> None:
    session = new_session_id()
    response, first = invoke(client, turn_event(session, 1, "Add P-0042 to my cart"))
    assert "FunctionError" not in response
    _, second = invoke(client, turn_event(session, 2, "Show me the cart"))
    meta1, meta2 = meta_of(first), meta_of(second)
    assert meta1["cold"] is True and meta1["init_ms"] > 0
    assert meta2["cold"] is False and meta2["instance_id"] == meta1["instance_id"]
    assert re.fullmatch(r"lambda-\d+-[0-9a-f]{8}", meta1["instance_id"])
    assert one(sse_events(second["body"]), "done")["state"]["turn"] == 2
    # ministack's tail log is the function's own output: no REPORT line.
    log = base64.b64decode(response["LogResult"]).decode()
    assert f"turn 1 of {session} -> 200" in log
    assert report_from_log_result(response["LogResult"]) is None


def test_the_function_url_serves_the_session_protocol(deployed: DeployedFunction) -> None:
    assert deployed.url is not None
    session = new_session_id()
    request = urllib.request.Request(
        f"{deployed.url}/v1/sessions/{session}/turns",
        data=json.dumps({"turn": 1, "message": "Add P-0042 to my cart"}).encode(),
        headers={
            "Authorization": f"Bearer {token_for(session)}",
            "Idempotency-Key": f"{session}-t1",
            "Content-Type": "application/json",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/event-stream"
        events = sse_events(response.read().decode())
    assert one(events, "done")["state"]["cart"] == {"P-0042": 1}
    anonymous = urllib.request.Request(
        f"{deployed.url}/v1/sessions/{session}/turns", data=b"{}", method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(anonymous, timeout=30)
    assert refused.value.code == 401
    assert json.loads(refused.value.read())["error"]["kind"] == "auth"


def test_recycling_by_configuration_and_killing_an_environment(
    client: Any, deployed: DeployedFunction
) -> None:
    session = new_session_id()
    before = meta_of(invoke(client, turn_event(session, 1, "Show me shoes"))[1])

    config = client.get_function_configuration(FunctionName=FUNCTION)
    variables = config["Environment"]["Variables"] | {"LOADLAB_RECYCLE_NONCE": uuid.uuid4().hex}
    client.update_function_configuration(
        FunctionName=FUNCTION, Environment={"Variables": variables}
    )
    wait_until_ready(client, FUNCTION)
    recycled = meta_of(invoke(client, turn_event(session, 2, "Show me shoes"))[1])
    assert recycled["cold"] is True and recycled["instance_id"] != before["instance_id"]
    assert recycled["state_source"] == "checkpoint"  # the new environment's cache was empty

    # The pid in the instance id is the environment's process: kill it while idle.
    pid = int(recycled["instance_id"].split("-")[1])
    os.kill(pid, signal.SIGKILL)
    # Until all its threads are gone (a few ms), the dead environment's exit is not
    # reported, and ministack would still hand it the next invocation.
    deadline = time.monotonic() + 10
    while not process_exited(pid) and time.monotonic() < deadline:
        time.sleep(0.01)  # a process that is not ours: no exit event to wait on
    after = meta_of(invoke(client, turn_event(session, 3, "Show me shoes"))[1])
    assert after["cold"] is True and after["instance_id"] != recycled["instance_id"]


def test_reserved_concurrency_zero_throttles_every_invocation(
    client: Any, deployed: DeployedFunction
) -> None:
    client.put_function_concurrency(FunctionName=FUNCTION, ReservedConcurrentExecutions=0)
    try:
        with pytest.raises(client.exceptions.TooManyRequestsException) as throttled:
            invoke(client, turn_event(new_session_id(), 1, "hi"))
    finally:
        client.put_function_concurrency(
            FunctionName=FUNCTION, ReservedConcurrentExecutions=LOCAL_RESERVED_CONCURRENCY
        )
    error = throttled.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert error["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "1"


def test_redeploying_updates_code_and_configuration(
    client: Any,
    deployed: DeployedFunction,
    package: Package,
    ministack: str,
    llm_url: str,
    table: str,
) -> None:
    changed = spec(ministack, llm_url, table)
    changed = FunctionSpec(
        name=changed.name,
        timeout_s=25,
        memory_mb=1024,
        reserved_concurrency=None,
        function_url=True,
        environment=changed.environment,
    )
    again = deploy_function(client, changed, package.read(), endpoint_url=ministack)
    assert not again.created and again.url == deployed.url and again.arn == deployed.arn
    config = client.get_function_configuration(FunctionName=FUNCTION)
    assert (config["Timeout"], config["MemorySize"]) == (25, 1024)
    assert "ReservedConcurrentExecutions" not in client.get_function_concurrency(
        FunctionName=FUNCTION
    )
    assert meta_of(invoke(client, turn_event(new_session_id(), 1, "hi"))[1])["cold"] is True
