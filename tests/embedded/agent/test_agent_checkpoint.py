"""The DynamoDB checkpoint store against a real ministack."""

from __future__ import annotations

import asyncio
from typing import Any

import boto3
import pytest
from agent_support import Dynamo, free_port, new_session_id
from botocore.config import Config

from loadlab.embedded.agent.checkpoint import (
    CheckpointConflict,
    CheckpointStore,
    CheckpointUnavailable,
    ensure_table,
)
from loadlab.embedded.agent.state import APPLIED_KEYS_KEPT, DownstreamCounts, SessionState
from loadlab.errors import StackError

pytestmark = pytest.mark.integration


def _with_store(dynamo: Dynamo, body: Any) -> Any:
    async def run() -> Any:
        client = dynamo.client()
        store = CheckpointStore(client=client, table=dynamo.table, max_workers=2)
        try:
            return await body(store)
        finally:
            store.close()
            client.close()

    return asyncio.run(run())


def test_save_then_load_round_trips_and_counts_capacity(dynamo: Dynamo) -> None:
    sid = new_session_id()
    state = SessionState(session_id=sid).advanced(
        cart={"P-0001": 2}, key="k1", note="add_to_cart: add P-0001"
    )
    counts = DownstreamCounts()

    async def body(store: CheckpointStore) -> tuple[Any, Any, Any]:
        missing = await store.load(sid, counts)
        saved = await store.save(state, expected_version=0, counts=counts)
        return missing, saved, await store.load(sid, counts)

    missing, saved, loaded = _with_store(dynamo, body)
    assert missing is None
    assert saved.version == 1 and loaded == saved
    assert loaded.cart == {"P-0001": 2} and loaded.applied_keys == {"k1": 1}
    assert loaded.history == ("add_to_cart: add P-0001",)
    assert counts.ddb_calls == 3 and counts.ddb_rcu > 0 and counts.ddb_wcu > 0


def test_a_write_from_a_stale_version_is_a_conflict(dynamo: Dynamo) -> None:
    sid = new_session_id()
    base = SessionState(session_id=sid).advanced(cart={}, key="k1", note="browse: hi")

    async def body(store: CheckpointStore) -> list[str]:
        counts = DownstreamCounts()
        v1 = await store.save(base, expected_version=0, counts=counts)
        outcomes = []
        for expected in (0, 2):  # "first write" again, and a version from the future
            try:
                await store.save(v1, expected_version=expected, counts=counts)
                outcomes.append("written")
            except CheckpointConflict:
                outcomes.append("conflict")
        v2 = await store.save(v1, expected_version=1, counts=counts)
        outcomes.append(f"v{v2.version}")
        return outcomes

    assert _with_store(dynamo, body) == ["conflict", "conflict", "v2"]
    assert dynamo.item(sid)["version"] == {"N": "2"}  # type: ignore[index]


def test_only_the_last_32_idempotency_keys_are_kept(dynamo: Dynamo) -> None:
    sid = new_session_id()
    state = SessionState(session_id=sid)
    for n in range(1, 41):
        state = state.advanced(cart={}, key=f"k{n}", note=f"browse: {n}")

    async def body(store: CheckpointStore) -> SessionState | None:
        await store.save(state, expected_version=0, counts=DownstreamCounts())
        return await store.load(sid, DownstreamCounts())

    loaded = _with_store(dynamo, body)
    assert loaded is not None and loaded.turn == 40
    assert list(loaded.applied_keys) == [f"k{n}" for n in range(9, 41)]
    assert len(loaded.applied_keys) == APPLIED_KEYS_KEPT
    assert loaded.history == ("browse: 37", "browse: 38", "browse: 39", "browse: 40")


def test_an_unreachable_dynamodb_is_reported_not_raised_raw() -> None:
    client = boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )

    async def run() -> DownstreamCounts:
        store = CheckpointStore(client=client, table="loadlab-checkpoints", max_workers=1)
        counts = DownstreamCounts()
        try:
            with pytest.raises(CheckpointUnavailable):
                await store.load("s-1", counts)
        finally:
            store.close()
        return counts

    try:
        assert asyncio.run(run()).ddb_calls == 1
        with pytest.raises(StackError, match="cannot reach DynamoDB"):
            ensure_table(client, "loadlab-checkpoints")
    finally:
        client.close()
