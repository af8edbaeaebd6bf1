"""DynamoDB capacity actions and probes against a real gate in front of ministack."""

from __future__ import annotations

import json
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from chaoslib.exceptions import ActivityFailed
from downstream_support import Gate

from loadlab.chaos.downstream.actions import dynamodb_capacity_cut, dynamodb_capacity_restore
from loadlab.chaos.downstream.probes import dynamodb_capacity, dynamodb_capacity_cut_active

pytestmark = pytest.mark.integration


def dynamodb(endpoint: str) -> Any:
    no_profile = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
    return boto3.session.Session(
        botocore_session=no_profile,
        aws_access_key_id="loadlab",
        aws_secret_access_key="loadlab-local",
        region_name="us-east-1",
    ).client("dynamodb", endpoint_url=endpoint, config=Config(retries={"max_attempts": 0}))


@pytest.fixture
def table(gate: Gate) -> str:
    client = dynamodb(gate.ministack_url)
    name = f"cut-{id(gate) % 100000}"
    try:
        client.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    finally:
        client.close()
    return name


def put(gate: Gate, table: str, key: str) -> str:
    """``ok`` or the error code of one PutItem through the gate."""
    client = dynamodb(gate.url)
    try:
        client.put_item(TableName=table, Item={"k": {"S": key}})
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    finally:
        client.close()
    return "ok"


def test_a_capacity_cut_throttles_until_restored(
    gate: Gate, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOADLAB_DDB_GATE_URL", gate.url)
    assert dynamodb_capacity()["settings"]["wcu"] is None  # unlimited by default
    applied = dynamodb_capacity_cut(wcu="0", duration_s=60)
    json.dumps(applied)
    assert applied["target"] == "dynamodb" and applied["wcu"] == 0.0 and "rcu" not in applied
    assert applied["burst_s"] == 0.0 and applied["active"] is True
    assert dynamodb_capacity_cut_active() is True
    assert put(gate, table, "a") == "ProvisionedThroughputExceededException"
    seen = dynamodb_capacity()
    assert seen["settings"]["expires_at"] == applied["expires_at"]
    assert seen["totals"]["write_throttle_events"] == 1

    restored = dynamodb_capacity_restore()
    assert restored["active"] is False and restored["settings"]["wcu"] is None
    assert put(gate, table, "a") == "ok"


def test_a_capacity_cut_ends_by_itself_when_its_lease_expires(gate: Gate, table: str) -> None:
    applied = dynamodb_capacity_cut(rcu=1, wcu=0, duration_s=30, gate_url=gate.url)
    assert put(gate, table, "b") == "ProvisionedThroughputExceededException"
    gate.wall.now = applied["expires_at"] + 0.001  # the gate's clock passes the expiry
    assert dynamodb_capacity_cut_active(gate_url=gate.url) is False
    assert put(gate, table, "b") == "ok"  # nobody restored it


def test_bad_cuts_and_wrong_urls_fail_clearly(gate: Gate) -> None:
    with pytest.raises(ActivityFailed, match="needs rcu or wcu"):
        dynamodb_capacity_cut(gate_url=gate.url)
    with pytest.raises(ActivityFailed, match="wcu=-1"):
        dynamodb_capacity_cut(wcu=-1, gate_url=gate.url)
    with pytest.raises(ActivityFailed, match="LOADLAB_DDB_GATE_URL"):
        dynamodb_capacity()
    with pytest.raises(ActivityFailed, match="not a loadlab DynamoDB capacity gate"):
        dynamodb_capacity_cut(wcu=1, gate_url=gate.ministack_url)  # ministack itself
    assert dynamodb_capacity_cut_active(gate_url=gate.url) is False
