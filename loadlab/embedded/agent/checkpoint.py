"""Session checkpoints in DynamoDB, one item per session (docs/protocol.md).

Every write is conditional on the version read before it (``attribute_not_exists``
for the first), so two instances that both believe they own a session cannot
overwrite each other: the loser gets :class:`CheckpointConflict`. boto3 is
blocking, so calls run on a small bounded thread pool owned by the store; every
call asks for ``ReturnConsumedCapacity=TOTAL`` and adds its calls (botocore's own
retries included), RCU and WCU to the turn's :class:`DownstreamCounts`.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from loadlab.embedded.agent.state import DownstreamCounts, SessionState
from loadlab.errors import StackError

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient

CONFLICT_CODE = "ConditionalCheckFailedException"


class CheckpointConflict(Exception):
    """The item changed since it was read: another write got there first."""


class CheckpointUnavailable(Exception):
    """DynamoDB could not be reached or refused the call (throttled, missing table …)."""


def state_to_item(state: SessionState, *, now: float) -> dict[str, Any]:
    """The DynamoDB item (attribute-value form) of a state."""
    return {
        "session_id": {"S": state.session_id},
        "version": {"N": str(state.version)},
        "turn": {"N": str(state.turn)},
        "cart": {"M": {sku: {"N": str(qty)} for sku, qty in state.cart.items()}},
        "applied_keys": {"M": {k: {"N": str(t)} for k, t in state.applied_keys.items()}},
        "history": {"L": [{"S": note} for note in state.history]},
        "updated_at": {"N": f"{now:.3f}"},
    }


def item_to_state(item: Mapping[str, Any]) -> SessionState:
    """The state held by a DynamoDB item (attribute-value form)."""

    def numbers(name: str) -> dict[str, int]:
        values = item.get(name, {}).get("M", {})
        return {k: int(v["N"]) for k, v in values.items()}

    keys = numbers("applied_keys")
    return SessionState(
        session_id=item["session_id"]["S"],
        version=int(item["version"]["N"]),
        turn=int(item.get("turn", {"N": "0"})["N"]),
        cart=numbers("cart"),
        applied_keys=dict(sorted(keys.items(), key=lambda kv: kv[1])),
        history=tuple(v["S"] for v in item.get("history", {}).get("L", [])),
    )


class CheckpointStore:
    """Loads and conditionally saves session states in one DynamoDB table."""

    def __init__(self, *, client: DynamoDBClient, table: str, max_workers: int = 16) -> None:
        self.client = client
        self.table = table
        self._executor = ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="loadlab-checkpoint"
        )

    async def _call(
        self, counts: DownstreamCounts, call: Callable[[], Mapping[str, Any]]
    ) -> Mapping[str, Any]:
        loop = asyncio.get_running_loop()
        try:
            response = await loop.run_in_executor(self._executor, call)
        except ClientError as exc:
            counts.ddb_calls += 1 + _retries(exc.response)
            if exc.response.get("Error", {}).get("Code") == CONFLICT_CODE:
                raise CheckpointConflict(str(exc)) from None
            raise CheckpointUnavailable(str(exc)) from None
        except BotoCoreError as exc:
            counts.ddb_calls += 1
            raise CheckpointUnavailable(str(exc)) from None
        counts.ddb_calls += 1 + _retries(response)
        return response

    async def load(self, session_id: str, counts: DownstreamCounts) -> SessionState | None:
        """The checkpointed state of a session (strongly consistent read), or None."""
        response = await self._call(
            counts,
            functools.partial(
                self.client.get_item,
                TableName=self.table,
                Key={"session_id": {"S": session_id}},
                ConsistentRead=True,
                ReturnConsumedCapacity="TOTAL",
            ),
        )
        counts.ddb_rcu += _capacity(response)
        item = response.get("Item")
        return None if item is None else item_to_state(item)

    async def save(
        self, state: SessionState, *, expected_version: int, counts: DownstreamCounts
    ) -> SessionState:
        """Write ``state`` as version ``expected_version + 1`` if the item is still at
        ``expected_version`` (absent when 0); return the state as written.

        Raises :class:`CheckpointConflict` if another write got there first.
        """
        written = state.with_version(expected_version + 1)
        if expected_version == 0:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(session_id)"}
        else:
            condition = {
                "ConditionExpression": "#v = :expected",
                "ExpressionAttributeNames": {"#v": "version"},
                "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
            }
        response = await self._call(
            counts,
            functools.partial(
                self.client.put_item,
                TableName=self.table,
                Item=state_to_item(written, now=time.time()),
                ReturnConsumedCapacity="TOTAL",
                **condition,
            ),
        )
        counts.ddb_wcu += _capacity(response)
        return written

    def close(self) -> None:
        """Stop the thread pool (calls in progress finish first)."""
        self._executor.shutdown(wait=True, cancel_futures=True)


def _retries(response: Mapping[str, Any]) -> int:
    return int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0))


def _capacity(response: Mapping[str, Any]) -> float:
    return float(response.get("ConsumedCapacity", {}).get("CapacityUnits", 0.0))


def ensure_table(client: DynamoDBClient, table: str, *, timeout_s: float = 30.0) -> None:
    """Create the checkpoint table (on-demand, key ``session_id`` S) unless it exists,
    and wait until it is ACTIVE. Safe to call from several processes at once.

    Raises :class:`~loadlab.errors.StackError` if DynamoDB does not answer or the
    table does not become active within ``timeout_s``.
    """
    try:
        client.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "session_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "session_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise StackError(
                f"cannot create DynamoDB table {table!r}: {exc}",
                hint="check the DynamoDB endpoint (AWS_ENDPOINT_URL) and credentials",
            ) from None
    except BotoCoreError as exc:
        raise StackError(
            f"cannot reach DynamoDB to create table {table!r}: {exc}",
            hint="start ministack or set AWS_ENDPOINT_URL / LOADLAB_AGENT_DYNAMODB_ENDPOINT",
        ) from None
    deadline = time.monotonic() + timeout_s
    status = "UNKNOWN"
    while time.monotonic() < deadline:
        try:
            status = client.describe_table(TableName=table)["Table"].get("TableStatus", status)
        except (ClientError, BotoCoreError) as exc:
            status = f"not describable ({exc})"
        if status == "ACTIVE":
            return
        time.sleep(0.2)
    raise StackError(
        f"DynamoDB table {table!r} is still {status} after {timeout_s:.0f} s",
        hint="retry, or create the table by hand (key session_id, type S)",
    )
