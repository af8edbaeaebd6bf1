"""The DynamoDB gate in front of a real ministack, driven with boto3 and raw HTTP."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from gate_support import ADMIN_TOKEN, ManualClock, aws_client, create_table

from loadlab.embedded.ddb_gate import THROTTLE_BODY, DynamoDBGate

pytestmark = pytest.mark.integration

BIG = "x" * 3000  # a ~3 KB item: 3 WCU


def http(
    method: str, url: str, body: object | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    data = (
        None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    )
    if headers is None and "/admin/" in url:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def capacity(gate: DynamoDBGate) -> dict[str, Any]:
    status, _, body = http("GET", f"{gate.url}/admin/capacity")
    assert status == 200
    return dict(json.loads(body))


def test_an_empty_bucket_answers_as_dynamodb_and_botocore_retries_it_as_throttling(
    start_gate: Callable[..., DynamoDBGate],
) -> None:
    gate = start_gate(wcu=0.0, burst_s=0.0)
    client = aws_client("dynamodb", gate.url, retries=1)
    try:
        create_table(client, "throttled")  # the control plane is never gated
        with pytest.raises(ClientError) as err:
            client.put_item(TableName="throttled", Item={"k": {"S": "a"}})
        reads = client.scan(TableName="throttled")  # only writes were cut
    finally:
        client.close()
    assert type(err.value).__name__ == "ProvisionedThroughputExceededException"
    assert err.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert err.value.response["ResponseMetadata"]["RetryAttempts"] == 1  # retried once
    assert reads["Items"] == []
    usage = capacity(gate)["tables"]["throttled"]
    assert usage["operations"]["PutItem"]["write_throttle_events"] == 2
    assert usage["throttled_requests"] == 2 and usage["read_throttle_events"] == 0

    # On the wire: 400, DynamoDB's JSON content type, DynamoDB's exact body.
    status, headers, body = http(
        "POST",
        gate.url + "/",
        {"TableName": "throttled", "Item": {"k": {"S": "b"}}},
        {"X-Amz-Target": "DynamoDB_20120810.PutItem", "Content-Type": "application/x-amz-json-1.0"},
    )
    assert status == 400
    assert headers["Content-Type"] == "application/x-amz-json-1.0"
    assert body == THROTTLE_BODY
    assert json.loads(body)["__type"].endswith("#ProvisionedThroughputExceededException")
    status, _, text = http("GET", f"{gate.url}/metrics")
    assert status == 200
    assert (
        'loadlab_ddb_write_throttle_events_total{operation="PutItem",table="throttled"} 3.0'
        in text.decode()
    )


def test_capacity_is_charged_from_ministacks_consumed_capacity_and_refills(
    start_gate: Callable[..., DynamoDBGate],
) -> None:
    mono = ManualClock(0.0)
    gate = start_gate(wcu=1.0, burst_s=0.0, clock=mono)
    client = aws_client("dynamodb", gate.url)
    try:
        create_table(client, "charged")
        put = client.put_item(
            TableName="charged",
            Item={"k": {"S": "a"}, "v": {"S": BIG}},
            ReturnConsumedCapacity="TOTAL",
        )
        with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
            client.put_item(TableName="charged", Item={"k": {"S": "b"}})
        mono.now = 2.5  # 1 - 3 + 2.5 x 1 WCU/s > 0
        client.put_item(TableName="charged", Item={"k": {"S": "c"}, "v": {"S": BIG}})  # no RCC
        got = client.get_item(TableName="charged", Key={"k": {"S": "a"}}, ConsistentRead=True)
    finally:
        client.close()
    assert put["ConsumedCapacity"]["CapacityUnits"] == 3.0
    assert got["Item"]["v"]["S"] == BIG
    usage = capacity(gate)["tables"]["charged"]
    # 3 WCU reported by ministack + 3 WCU estimated from the item's size (not asked for).
    assert usage["consumed_wcu"] == 6.0
    assert usage["consumed_rcu"] == 1.0
    assert usage["write_available"] == pytest.approx(1 - 3 + 2.5 - 3)


def test_a_capacity_lease_ends_by_itself_and_delete_restores_at_once(
    start_gate: Callable[..., DynamoDBGate],
) -> None:
    wall = ManualClock(time.time())
    gate = start_gate(wall_clock=wall)  # defaults: unlimited
    client = aws_client("dynamodb", gate.url)
    try:
        create_table(client, "leased")
        status, _, body = http(
            "POST",
            f"{gate.url}/admin/capacity",
            {"rcu": 0, "wcu": 0, "burst_s": 0, "expires_at": wall.now + 60},
        )
        view = json.loads(body)
        assert status == 200 and view["active"] is True and view["settings"]["wcu"] == 0
        with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
            client.get_item(TableName="leased", Key={"k": {"S": "a"}})
        wall.now += 61  # the lease runs out: nobody has to revert it
        client.put_item(TableName="leased", Item={"k": {"S": "a"}})
        after = capacity(gate)
        assert after["active"] is False and after["settings"]["wcu"] is None

        http("POST", f"{gate.url}/admin/capacity", {"wcu": 0, "expires_at": wall.now + 600})
        with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
            client.put_item(TableName="leased", Item={"k": {"S": "b"}})
        status, _, body = http("DELETE", f"{gate.url}/admin/capacity")
        assert status == 200 and json.loads(body)["override"] is None
        client.put_item(TableName="leased", Item={"k": {"S": "b"}})
    finally:
        client.close()


def test_bad_capacity_updates_are_refused_with_the_field_named(
    start_gate: Callable[..., DynamoDBGate],
) -> None:
    gate = start_gate()
    for body, message in [
        ({"wcu": -5}, "wcu must be"),
        ({"throughput": 1}, "unknown capacity field"),
        (b"{not json", "not valid JSON"),
    ]:
        status, _, answer = http("POST", f"{gate.url}/admin/capacity", body)
        assert status == 400
        assert message in json.loads(answer)["error"]["message"]
    assert capacity(gate)["override"] is None


def test_everything_but_the_dynamodb_data_plane_passes_through_untouched(
    start_gate: Callable[..., DynamoDBGate], ministack_url: str
) -> None:
    gate = start_gate(rcu=0.0, wcu=0.0, burst_s=0.0)  # every data-plane call would be refused
    direct = http("GET", f"{ministack_url}/_ministack/health")
    proxied = http("GET", f"{gate.url}/_ministack/health")
    assert proxied[0] == direct[0] == 200
    assert json.loads(proxied[2]) == json.loads(direct[2])
    ssm = aws_client("ssm", gate.url)
    dynamodb = aws_client("dynamodb", gate.url)
    try:
        ssm.put_parameter(Name="/loadlab/gate-test", Value="through the gate", Type="String")
        value = ssm.get_parameter(Name="/loadlab/gate-test")["Parameter"]["Value"]
        create_table(dynamodb, "passthrough")
        described = dynamodb.describe_table(TableName="passthrough")["Table"]["TableName"]
        with pytest.raises(ClientError) as missing:  # ministack's own errors come back as they are
            dynamodb.describe_table(TableName="no-such-table")
    finally:
        ssm.close()
        dynamodb.close()
    assert value == "through the gate"
    assert described == "passthrough"
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert capacity(gate)["tables"] == {}  # nothing above was counted as data-plane traffic


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer garbage"}, {"Authorization": ADMIN_TOKEN}],
    ids=["no-token", "garbage-token", "no-bearer-scheme"],
)
def test_the_admin_api_refuses_a_missing_or_wrong_token(
    start_gate: Callable[..., DynamoDBGate], headers: dict[str, str]
) -> None:
    gate = start_gate()
    url = f"{gate.url}/admin/capacity"
    lease = {"wcu": 0, "expires_at": time.time() + 60}
    for method, body in (("GET", None), ("POST", lease), ("DELETE", None)):
        status, _, answer = http(method, url, body, headers=headers)
        assert status == 401, method
        message = json.loads(answer)["error"]["message"]
        assert "LOADLAB_ADMIN_TOKEN" in message and ADMIN_TOKEN not in message
    assert capacity(gate)["override"] is None


@pytest.mark.parametrize(
    "body",
    [{"wcu": 0}, {"wcu": 0, "expires_at": None}, {"wcu": 0, "expires_at": "later"}],
    ids=["no-expiry", "null-expiry", "not-a-time"],
)
def test_an_override_without_a_lease_is_refused(
    start_gate: Callable[..., DynamoDBGate], body: dict[str, object]
) -> None:
    gate = start_gate()
    status, _, answer = http("POST", f"{gate.url}/admin/capacity", body)
    assert status == 400
    assert "expires_at" in json.loads(answer)["error"]["message"]
    assert capacity(gate)["override"] is None


def test_an_override_past_the_maximum_lease_is_refused_with_the_limit_named(
    start_gate: Callable[..., DynamoDBGate],
) -> None:
    gate = start_gate()
    body = {"wcu": 0, "expires_at": time.time() + 3600}
    status, _, answer = http("POST", f"{gate.url}/admin/capacity", body)
    assert status == 400
    assert "maximum lease of 900 s (15 minutes)" in json.loads(answer)["error"]["message"]
    assert capacity(gate)["override"] is None
