"""The Lambda actions against a real ministack: each applied, read back, rolled back; bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from chaoslib.exceptions import ActivityFailed
from lambda_chaos_support import (
    AwsStandIn,
    events_of,
    invoke,
    put_concurrency_denied,
    ssm_denied,
)

from loadlab.chaos.aws_lambda import actions, probes
from loadlab.chaos.aws_lambda.aws_clients import Clients, reserved_concurrency
from loadlab.chaos.aws_lambda.lease_store import NONCE_VARIABLE, list_leases
from loadlab.embedded.aws_lambda.killhook import KillOrder

pytestmark = pytest.mark.integration
MakeFunction = Callable[..., str]


def test_throttle_then_restore_gives_back_the_reserved_concurrency(
    make_function: MakeFunction, clients: Clients, ministack: str
) -> None:
    name = make_function(reserved=8)
    applied = actions.throttle(name, reserved_concurrency=0, duration_s=60)
    assert applied["previous"] == 8 and applied["reserved_concurrency"] == 0
    assert applied["target"] == f"function_name={name}" and applied["expires_at"] > 0

    seen = probes.function_concurrency(name)
    assert seen == {
        "function_name": name,
        "reserved_concurrency": 0,
        "throttled": True,
        "leases": [applied["lease_id"]],
    }
    assert probes.throttle_active(name) is True
    with pytest.raises(clients.lambda_.exceptions.TooManyRequestsException):
        clients.lambda_.invoke(FunctionName=name, Payload=b"{}")

    restored = actions.restore_concurrency(name)
    assert restored["reserved_concurrency"] == 8 and restored["active"] is False
    assert [r["outcome"] for r in restored["reverted"]] == ["restored"]
    assert reserved_concurrency(clients.lambda_, name) == 8
    assert probes.throttle_active(name) is False and probes.active_leases(name) == []
    assert "pid" in invoke(ministack, name)


def test_an_unreserved_function_is_left_unreserved_again(
    make_function: MakeFunction, clients: Clients
) -> None:
    name = make_function(reserved=None)
    applied = actions.throttle(name, reserved_concurrency=2, duration_s=60)
    assert applied["previous"] is None and reserved_concurrency(clients.lambda_, name) == 2
    actions.restore_concurrency(name)
    assert reserved_concurrency(clients.lambda_, name) is None


def test_an_arn_and_a_name_address_the_same_leases(
    make_function: MakeFunction, clients: Clients
) -> None:
    name = make_function(reserved=8)
    arn = f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
    assert actions.throttle(arn, reserved_concurrency=0)["function_name"] == name
    assert actions.restore_concurrency(name)["reserved_concurrency"] == 8


def test_overlapping_throttles_hand_over_and_the_original_comes_back(
    make_function: MakeFunction, clients: Clients
) -> None:
    name = make_function(reserved=8)
    first = actions.throttle(name, reserved_concurrency=0, duration_s=30)
    second = actions.throttle(name, reserved_concurrency=1, duration_s=300)
    assert second["previous"] == 8  # the original, not the first throttle's 0

    from loadlab.chaos.aws_lambda.leases import revert_due_leases

    # The first throttle's lease runs out while the second still holds.
    (result,) = revert_due_leases(clients, now=first["expires_at"] + 1, orphans=False)
    assert result.lease.lease_id == first["lease_id"] and result.outcome == "left"
    assert reserved_concurrency(clients.lambda_, name) == 1

    actions.restore_concurrency(name)
    assert reserved_concurrency(clients.lambda_, name) == 8


def test_a_setting_changed_by_someone_else_is_left_alone(
    make_function: MakeFunction, clients: Clients
) -> None:
    name = make_function(reserved=8)
    actions.throttle(name, reserved_concurrency=0, duration_s=60)
    clients.lambda_.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=5)
    restored = actions.restore_concurrency(name)
    assert [r["outcome"] for r in restored["reverted"]] == ["left"]
    assert reserved_concurrency(clients.lambda_, name) == 5
    assert list_leases(clients, function_name=name) == []


def test_recycle_keeps_every_variable_and_its_rollback_removes_the_nonce(
    make_function: MakeFunction, clients: Clients, ministack: str
) -> None:
    variables = {"SHOP": "flash-sale", "REGION_HINT": "eu", "LOADLAB_AGENT_MODE": "correct"}
    name = make_function(environment=variables)
    before = invoke(ministack, name)

    recycled = actions.recycle_environments(name, wait_s=30)
    config = clients.lambda_.get_function_configuration(FunctionName=name)
    assert config["State"] == "Active" and config["LastUpdateStatus"] == "Successful"
    assert config["Environment"]["Variables"] == variables | {NONCE_VARIABLE: recycled["nonce"]}
    assert recycled["variables_kept"] == 3 and recycled["previous_nonce"] is None
    assert recycled["ready_after_s"] >= 0 and "expires_at" not in recycled
    after = invoke(ministack, name)
    assert after["pid"] != before["pid"] and after["nonce"] == recycled["nonce"]

    again = actions.recycle_environments(name, wait_s=30)
    assert again["previous_nonce"] == recycled["nonce"]
    rolled_back = actions.restore_configuration(name)
    assert [r["outcome"] for r in rolled_back["reverted"]] == ["restored", "left"]
    config = clients.lambda_.get_function_configuration(FunctionName=name)
    assert config["Environment"]["Variables"] == variables
    assert list_leases(clients, function_name=name) == []


def test_a_kill_order_is_what_the_hook_reads_and_the_rollback_deletes_it(
    make_function: MakeFunction, clients: Clients
) -> None:
    name = make_function()
    ordered = actions.kill_environments(name, fraction=0.25, moment="any", duration_s=30)
    parameter = f"/loadlab/kill-orders/{name}"
    assert ordered["parameter"] == parameter
    raw = clients.ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    order = KillOrder.parse(raw)  # exactly what the function side accepts
    assert (order.order_id, order.fraction, order.moment) == (ordered["order_id"], 0.25, "any")
    assert order.expires_at == ordered["expires_at"] and order.function_name == name

    seen = probes.kill_order(name)
    assert seen["active"] is True and seen["order"]["order_id"] == ordered["order_id"]
    assert probes.kill_order_active(name) is True
    (lease,) = list_leases(clients, function_name=name)
    assert lease.kind == "kill_order" and lease.parameter == parameter

    cleared = actions.clear_kill_orders(name)
    assert cleared["deleted"] is True and cleared["reverted"][0]["outcome"] == "restored"
    assert probes.kill_order(name) == {
        "parameter": parameter,
        "order": None,
        "active": False,
        "problem": None,
    }
    assert list_leases(clients, function_name=name) == []


def test_the_probe_tells_an_expired_or_malformed_order(
    make_function: MakeFunction, clients: Clients
) -> None:
    name = make_function()
    parameter = f"/loadlab/kill-orders/{name}"
    stale = {"format": 1, "order_id": "o", "moment": "any", "expires_at": 1.0, "fraction": 1}
    clients.ssm.put_parameter(Name=parameter, Value=json.dumps(stale), Type="String")
    assert probes.kill_order(name)["problem"] == "expired"
    clients.ssm.put_parameter(Name=parameter, Value="{oops", Type="String", Overwrite=True)
    assert probes.kill_order(name)["problem"] == "not JSON"
    assert probes.kill_order_active(name) is False
    assert actions.clear_kill_orders(name)["deleted"] is True


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: actions.throttle("no-such-fn"), "'no-such-fn' not found"),
        (lambda: actions.kill_environments("no-such-fn"), "'no-such-fn' not found"),
        (lambda: actions.recycle_environments("no-such-fn"), "'no-such-fn' not found"),
        (lambda: actions.throttle("", 0), "no Lambda function: pass function_name or set"),
        (lambda: actions.throttle("fn", -1), "reserved_concurrency=-1 is invalid"),
        (lambda: actions.throttle("fn", 1.5), "reserved_concurrency=1.5 is invalid"),
        (lambda: actions.throttle("fn", 0, duration_s=0), "duration_s=0 is invalid"),
        (lambda: actions.throttle("fn", 0, duration_s=1e9), "duration_s=1000000000.0 is invalid"),
        (lambda: actions.kill_environments("fn", fraction=0), "fraction=0 is invalid"),
        (lambda: actions.kill_environments("fn", fraction="half"), "fraction='half' is not a"),
        (lambda: actions.kill_environments("fn", moment="later"), "moment='later' is invalid"),
        (
            lambda: actions.kill_environments("fn", parameter_prefix="kills"),
            "parameter_prefix='kills' must start with '/'",
        ),
    ],
)
def test_bad_input_is_refused_with_the_fix_and_changes_nothing(
    call: Callable[[], object], message: str, clients: Clients
) -> None:
    with pytest.raises(ActivityFailed) as refused:
        call()
    assert message in str(refused.value)
    if "not found" in message:
        assert "LOADLAB_LAMBDA_FUNCTION" in str(refused.value)
    assert list_leases(clients, function_name="no-such-fn") == []
    assert list_leases(clients, function_name="fn") == []


def test_parameter_store_refusing_leaves_nothing_throttled(
    make_function: MakeFunction, clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = make_function(reserved=8)
    with AwsStandIn(deny=ssm_denied) as aws:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", aws.url)
        with pytest.raises(ActivityFailed) as refused:
            actions.throttle(name, reserved_concurrency=0, duration_s=60)
    assert "AccessDeniedException" in str(refused.value)
    assert "allow ssm:GetParametersByPath on /loadlab/*" in str(refused.value)
    assert aws.refused == ["ssm:GetParametersByPath"]
    assert reserved_concurrency(clients.lambda_, name) == 8


def test_lambda_refusing_the_throttle_drops_its_lease(
    make_function: MakeFunction, clients: Clients, ministack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = make_function(reserved=8)
    with AwsStandIn(deny=put_concurrency_denied, upstream=ministack) as aws:
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", aws.url)
        with pytest.raises(ActivityFailed) as refused:
            actions.throttle(name, reserved_concurrency=0, duration_s=60)
    assert aws.refused == ["lambda:PutFunctionConcurrency"]
    assert "allow lambda:PutFunctionConcurrency" in str(refused.value)
    assert "the throttle was not applied" in str(refused.value)
    assert reserved_concurrency(clients.lambda_, name) == 8
    assert list_leases(clients, function_name=name) == []


def test_each_lease_starts_and_ends_on_the_run_timeline(
    make_function: MakeFunction, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOADLAB_RUN_DIR", str(tmp_path))
    name = make_function(reserved=8)
    applied = actions.throttle(name, reserved_concurrency=0, duration_s=60)
    actions.restore_concurrency(name)

    start, end = events_of(str(tmp_path / "events.jsonl"))
    assert (start["kind"], end["kind"]) == ("fault", "fault")
    assert start["target"] == end["target"] == f"function_name={name}"
    assert start["lease_expires"] == end["lease_expires"] == applied["expires_at"]
    assert start["attrs"]["fault_id"] == end["attrs"]["fault_id"] == f"lease-{applied['lease_id']}"
    assert (start["attrs"]["phase"], end["attrs"]["phase"]) == ("start", "end")
    assert (start["attrs"]["applied"], start["attrs"]["previous"]) == (0, 8)
    assert end["attrs"]["why"] == "rollback" and end["attrs"]["active"] is False
    assert float(start["t"]) <= float(end["t"])  # type: ignore[arg-type]
