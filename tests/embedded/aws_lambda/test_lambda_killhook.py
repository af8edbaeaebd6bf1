"""Kill orders: the hook's decisions in-process, then the agent function dying mid-turn.

The in-process tests read real orders from ministack's Parameter Store; only the
process exit is swapped for a recorder (the test process must survive).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from lambda_support import SECRET, free_port, new_session_id, one, sse_events, turn_event

from loadlab.chaos.aws_lambda.actions import clear_kill_orders, kill_environments
from loadlab.embedded.agent.events import MetaEvent, TokenEvent
from loadlab.embedded.aws_lambda.deploy import (
    DeployedFunction,
    FunctionSpec,
    agent_environment,
    deploy_function,
    lambda_client,
)
from loadlab.embedded.aws_lambda.killhook import (
    KILL_EXIT_CODE,
    KillOrder,
    KillOrders,
    kill_share,
    order_parameter,
)
from loadlab.embedded.aws_lambda.package import Package

FUNCTION = "loadlab-agent-kills"


class ManualClock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Exits:
    """Records the exits a hook asks for instead of ending the test process."""

    def __init__(self) -> None:
        self.codes: list[int] = []

    def __call__(self, code: int) -> None:
        self.codes.append(code)


def write_order(ssm: Any, function: str, **overrides: Any) -> KillOrder:
    now = time.time()
    values: dict[str, Any] = {
        "order_id": uuid.uuid4().hex[:16],
        "function_name": function,
        "fraction": 0.5,
        "moment": "llm_call",
        "issued_at": now,
        "expires_at": now + 60,
    }
    order = KillOrder(**(values | overrides))
    ssm.put_parameter(
        Name=order_parameter(function), Value=order.to_json(), Type="String", Overwrite=True
    )
    return order


@pytest.fixture(scope="module")
def ssm(ministack: str) -> Iterator[Any]:
    client = boto3.client(
        "ssm",
        endpoint_url=ministack,
        region_name="us-east-1",
        aws_access_key_id="t",
        aws_secret_access_key="t",
    )
    yield client
    client.close()


def hook(ssm: Any, function: str, environment_id: str, **options: Any) -> KillOrders:
    values: dict[str, Any] = {"started_at": time.time() - 60, "exit": Exits()}
    return KillOrders(
        function_name=function, environment_id=environment_id, ssm_client=ssm, **(values | options)
    )


def test_the_draw_is_deterministic_and_kills_about_the_fraction() -> None:
    draws = [kill_share("order-1", f"lambda-{pid}-abcdef12") for pid in range(4000)]
    assert draws == [kill_share("order-1", f"lambda-{pid}-abcdef12") for pid in range(4000)]
    assert all(0.0 <= d < 1.0 for d in draws)
    chosen = sum(d < 0.3 for d in draws)
    assert 1050 < chosen < 1350  # 1200 expected, sigma ~29
    # Another order draws anew: not the same environments every time.
    other = [kill_share("order-2", f"lambda-{pid}-abcdef12") < 0.3 for pid in range(4000)]
    assert other != [d < 0.3 for d in draws]


@pytest.mark.integration
def test_chosen_environments_exit_once_at_their_moment(ssm: Any) -> None:
    function = f"fn-{uuid.uuid4().hex[:8]}"
    order = write_order(ssm, function, fraction=0.4, moment="llm_call")
    hooks = [hook(ssm, function, f"lambda-{n}-0000beef") for n in range(60)]
    meta = MetaEvent(
        instance_id="x", cold=False, init_ms=1.0, state_source="memory", intent="x", replayed=False
    )
    for each in hooks:
        each.reached("invocation")  # not the ordered moment
        each.on_event(TokenEvent(text="hi"))  # not a meta event
    assert all(each._exit.codes == [] for each in hooks)  # type: ignore[attr-defined]

    for each in hooks:
        each.on_event(meta)
        each.on_event(meta)  # the next turn: an environment dies at most once per order
    exited = {each.environment_id for each in hooks if each._exit.codes}  # type: ignore[attr-defined]
    expected = {each.environment_id for each in hooks if kill_share(order.order_id,
                each.environment_id) < 0.4}  # fmt: skip
    assert exited == expected and 0 < len(exited) < 60
    assert all(each._exit.codes in ([], [KILL_EXIT_CODE]) for each in hooks)  # type: ignore[attr-defined]


@pytest.mark.integration
def test_moment_any_strikes_at_the_start_and_new_environments_are_spared(ssm: Any) -> None:
    function = f"fn-{uuid.uuid4().hex[:8]}"
    order = write_order(ssm, function, fraction=1.0, moment="any")
    running = hook(ssm, function, "lambda-1-running")
    replacement = hook(ssm, function, "lambda-2-replaced", started_at=order.issued_at + 1)
    running.reached("invocation")
    replacement.reached("invocation")
    replacement.reached("llm_call")
    assert running._exit.codes == [KILL_EXIT_CODE]  # type: ignore[attr-defined]
    assert replacement._exit.codes == []  # type: ignore[attr-defined]


@pytest.mark.integration
def test_expired_malformed_foreign_and_missing_orders_are_ignored_and_logged_once(
    ssm: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="loadlab.embedded.aws_lambda.killhook")
    function = f"fn-{uuid.uuid4().hex[:8]}"
    each = hook(ssm, function, "lambda-1-env", refresh_s=0.0)
    each.reached("llm_call")  # no order at all: nothing happens, nothing is logged
    assert caplog.records == []

    expired = write_order(ssm, function, fraction=1.0, expires_at=time.time() - 1)
    each.reached("llm_call")
    each.reached("llm_call")
    parameter = order_parameter(function)
    for value in ("{not json", json.dumps({"format": 1, "order_id": "x"}), "[1, 2]"):
        ssm.put_parameter(Name=parameter, Value=value, Type="String", Overwrite=True)
        each.reached("llm_call")
        each.reached("llm_call")
    write_order(ssm, function, fraction=1.0, function_name="another-function")
    each.reached("llm_call")
    each.reached("llm_call")

    assert each._exit.codes == []  # type: ignore[attr-defined]
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 5, messages  # each problem once, however often it is read
    assert f"kill order {expired.order_id} expired" in messages[0]
    assert all("malformed" in message for message in messages[1:4])
    assert "names function another-function" in messages[4]


@pytest.mark.integration
def test_the_order_is_read_at_most_once_per_refresh_interval(ssm: Any) -> None:
    function = f"fn-{uuid.uuid4().hex[:8]}"
    calls: list[str] = []
    ssm.meta.events.register("before-call.ssm.GetParameter", lambda **kw: calls.append("get"))
    clock = ManualClock()
    each = hook(ssm, function, "lambda-1-env", refresh_s=5.0, clock=clock)
    for _ in range(100):
        each.reached("invocation")
        each.reached("llm_call")
    assert calls == ["get"] and each.reads == 1

    order = write_order(ssm, function, fraction=1.0)
    clock.now += 4.9
    each.reached("llm_call")
    assert each._exit.codes == [] and each.reads == 1  # type: ignore[attr-defined]
    clock.now += 0.1
    each.reached("llm_call")
    assert each.reads == 2 and each._exit.codes == [KILL_EXIT_CODE]  # type: ignore[attr-defined]
    assert each.current() == order


@pytest.mark.integration
def test_priming_reads_the_order_in_the_background_once(ssm: Any) -> None:
    function = f"fn-{uuid.uuid4().hex[:8]}"
    order = write_order(ssm, function, fraction=1.0)
    clock = ManualClock()
    each = hook(ssm, function, "lambda-1-env", clock=clock)
    each.prime()
    each.prime()  # once per environment
    assert each._primer is not None  # type: ignore[attr-defined]
    each._primer.join(10)  # type: ignore[attr-defined]
    assert each.current() == order and each.reads == 1
    each.reached("llm_call")
    assert each._exit.codes == [KILL_EXIT_CODE] and each.reads == 1  # type: ignore[attr-defined]


def test_an_unreachable_parameter_store_means_no_kill(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="loadlab.embedded.aws_lambda.killhook")
    closed = boto3.client(
        "ssm",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region_name="us-east-1",
        aws_access_key_id="t",
        aws_secret_access_key="t",
    )
    try:
        each = hook(closed, "fn", "lambda-1-env", refresh_s=0.0)
        for _ in range(3):
            each.reached("invocation")
    finally:
        closed.close()
    assert each._exit.codes == [] and each.reads == 3  # type: ignore[attr-defined]
    assert len(caplog.records) == 1 and "cannot read kill order" in caplog.records[0].getMessage()


def test_the_hook_is_inert_outside_lambda_or_when_switched_off() -> None:
    assert not KillOrders.from_environment({}).enabled
    assert not KillOrders.from_environment(
        {"AWS_LAMBDA_FUNCTION_NAME": "fn", "LOADLAB_KILL_ORDERS": "off"}
    ).enabled
    on = KillOrders.from_environment(
        {
            "AWS_LAMBDA_FUNCTION_NAME": "fn",
            "LOADLAB_KILL_ORDERS_PREFIX": "/team/kills/",
            "LOADLAB_KILL_ORDERS_REFRESH_S": "0.5",
        }
    )
    assert on.enabled and on.parameter == "/team/kills/fn" and on.refresh_s == 0.5


# --- The agent function in ministack -------------------------------------------------------


@pytest.fixture(scope="module")
def deployed(
    package: Package, ministack: str, llm_url: str, table: str
) -> Iterator[DeployedFunction]:
    client = lambda_client(
        endpoint_url=ministack, region="us-east-1", access_key_id="t", secret_access_key="t"
    )
    spec = FunctionSpec(
        name=FUNCTION,
        timeout_s=20,
        reserved_concurrency=None,
        environment=agent_environment(
            jwt_secret=SECRET,
            llm_url=llm_url,
            table=table,
            dynamodb_endpoint=ministack,
            aws_endpoint_url=ministack,
            time_scale=0.01,
            # Read the order at every check, so the test needs no wait for a refresh.
            extra={"LOADLAB_KILL_ORDERS_REFRESH_S": "0"},
        ),
    )
    try:
        yield deploy_function(client, spec, package.read(), endpoint_url=ministack)
    finally:
        client.close()


@pytest.fixture
def lambda_api(ministack: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The Lambda client, with the chaos actions pointed at the same ministack."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", ministack)
    monkeypatch.setenv("LOADLAB_LEASE_WATCHDOG", "off")
    client = lambda_client(
        endpoint_url=ministack, region="us-east-1", access_key_id="t", secret_access_key="t"
    )
    yield client
    client.close()


def invoke(client: Any, event: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    response = client.invoke(FunctionName=FUNCTION, Payload=json.dumps(event).encode())
    return response, json.loads(response["Payload"].read())


def meta_of(payload: dict[str, Any]) -> dict[str, Any]:
    assert payload["statusCode"] == 200, payload
    return one(sse_events(payload["body"]), "meta")


def wait_exited(pid: int) -> None:
    """Until the killed environment's process is gone (ministack then spawns a new one)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return
        if stat in ("Z", "X"):
            return
        time.sleep(0.01)  # a process that is not ours: no exit event to wait on
    pytest.fail(f"environment {pid} did not exit")


@pytest.mark.integration
def test_a_kill_order_ends_the_environment_mid_turn_and_the_retry_resumes_cold(
    deployed: DeployedFunction, lambda_api: Any, ministack: str, table: str
) -> None:
    session = new_session_id()
    first = meta_of(invoke(lambda_api, turn_event(session, 1, "Add P-0042 to my cart"))[1])
    # A running environment, before the order; the order strikes after the checkpoint.
    order = kill_environments(FUNCTION, fraction=1.0, moment="llm_call", duration_s=60)
    try:
        response, payload = invoke(lambda_api, turn_event(session, 2, "Add P-0007 to my cart"))
        assert response.get("FunctionError") == "Unhandled"
        assert payload["errorMessage"] == "Worker process died"
        wait_exited(int(first["instance_id"].split("-")[1]))

        # The shopper retries with the same key: a new, cold environment (spared by the
        # order, being newer) finds the turn in the checkpoint and replays it.
        _, retry = invoke(lambda_api, turn_event(session, 2, "Add P-0007 to my cart"))
        meta = meta_of(retry)
        assert meta["cold"] is True and meta["instance_id"] != first["instance_id"]
        assert meta["state_source"] == "checkpoint" and meta["replayed"] is True
        assert one(sse_events(retry["body"]), "done")["state"]["cart"] == {
            "P-0042": 1,
            "P-0007": 1,
        }
        _, third = invoke(lambda_api, turn_event(session, 3, "Show me the cart"))
        assert meta_of(third)["instance_id"] == meta["instance_id"]
    finally:
        cleared = clear_kill_orders(FUNCTION)
    assert cleared["deleted"] and cleared["reverted"][0]["lease_id"] == order["lease_id"]


@pytest.mark.integration
def test_moment_any_kills_before_the_turn_is_applied(
    deployed: DeployedFunction, lambda_api: Any
) -> None:
    session = new_session_id()
    first = meta_of(invoke(lambda_api, turn_event(session, 1, "Add P-0042 to my cart"))[1])
    kill_environments(FUNCTION, fraction=1.0, moment="any", duration_s=60)
    try:
        _, payload = invoke(lambda_api, turn_event(session, 2, "Add P-0007 to my cart"))
        assert payload["errorMessage"] == "Worker process died"
        wait_exited(int(first["instance_id"].split("-")[1]))
        _, retry = invoke(lambda_api, turn_event(session, 2, "Add P-0007 to my cart"))
    finally:
        clear_kill_orders(FUNCTION)
    meta = meta_of(retry)
    # Killed before the turn ran: the retry applies it for the first time.
    assert meta["cold"] is True and meta["replayed"] is False
    assert meta["state_source"] == "checkpoint"


@pytest.mark.integration
def test_the_function_keeps_working_with_an_expired_or_malformed_order(
    deployed: DeployedFunction, lambda_api: Any, ssm: Any
) -> None:
    session = new_session_id()
    first = meta_of(invoke(lambda_api, turn_event(session, 1, "Show me shoes"))[1])
    write_order(ssm, FUNCTION, fraction=1.0, moment="any", issued_at=time.time() - 120,
                expires_at=time.time() - 60)  # fmt: skip
    try:
        second = meta_of(invoke(lambda_api, turn_event(session, 2, "Show me shoes"))[1])
        ssm.put_parameter(
            Name=order_parameter(FUNCTION), Value="kill everything", Type="String", Overwrite=True
        )
        third = meta_of(invoke(lambda_api, turn_event(session, 3, "Show me shoes"))[1])
    finally:
        ssm.delete_parameter(Name=order_parameter(FUNCTION))
    assert first["instance_id"] == second["instance_id"] == third["instance_id"]
    assert (second["cold"], third["cold"]) == (False, False)
