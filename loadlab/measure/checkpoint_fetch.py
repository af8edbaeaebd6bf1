"""Read sessions' checkpoint items from DynamoDB, 100 keys per ``BatchGetItem``.

Reads are strongly consistent (``ConsistentRead``) and fetch only the attributes
the oracle compares (key, ``version``, ``turn``, ``cart``). Keys DynamoDB
leaves in ``UnprocessedKeys`` (throttling, the 16 MB response limit) are asked
for again with bounded, jittered exponential backoff. Batches run on a small
thread pool; the client is the caller's (boto3 clients are thread-safe) and is
never created or patched here except by :func:`dynamodb_client` on request.

Every failure a user can fix becomes a :mod:`loadlab.errors` error naming the
table and the fix. Credentials never appear in a message.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from loadlab.errors import ConfigError, LoadLabError, TargetUnreachable
from loadlab.measure.checkpoint_rules import StoredCheckpoint

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient
    from types_boto3_dynamodb.type_defs import KeysAndAttributesTypeDef

BATCH_SIZE = 100
"""DynamoDB's limit of keys per BatchGetItem call."""

_ACCESS_CODES = frozenset(
    {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "MissingAuthenticationTokenException",
        "ExpiredTokenException",
        "InvalidClientTokenId",
    }
)
_THROTTLE_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchRetry:
    """How often, and how patiently, keys left unprocessed are asked for again.

    Round ``n`` (0-based) waits a random time up to ``min(max_s, base_s * 2**n)``
    (full jitter, so concurrent batches do not retry in lock step).
    """

    rounds: int = 8
    base_s: float = 0.05
    max_s: float = 2.0

    def delay_s(self, round_index: int, rng: random.Random) -> float:
        """The wait before retry round ``round_index``."""
        return rng.uniform(0.0, min(self.max_s, self.base_s * 2.0**round_index))


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchedCheckpoints:
    """The items found, by session id, and items that could not be fully parsed."""

    items: Mapping[str, StoredCheckpoint]
    problems: tuple[str, ...]


def fetch_checkpoints(
    client: DynamoDBClient,
    *,
    table: str,
    key_attribute: str,
    session_ids: Sequence[str],
    concurrency: int,
    retry: BatchRetry,
    progress: Callable[[int, int], None] | None = None,
) -> FetchedCheckpoints:
    """Fetch the checkpoint items of ``session_ids`` (distinct) from ``table``.

    ``progress(done, total)`` is called from the calling thread after each batch.
    Raises :class:`~loadlab.errors.ConfigError` for a missing table, refused
    credentials or a key schema that does not match, and
    :class:`~loadlab.errors.TargetUnreachable` when DynamoDB cannot be reached
    or keeps throttling.
    """
    endpoint = _endpoint(client)
    batches = [session_ids[i : i + BATCH_SIZE] for i in range(0, len(session_ids), BATCH_SIZE)]
    raw: list[dict[str, Any]] = []
    done = 0
    if not batches:
        return FetchedCheckpoints(items={}, problems=())
    executor = ThreadPoolExecutor(
        max_workers=max(1, min(concurrency, len(batches))), thread_name_prefix="loadlab-audit"
    )
    try:
        futures = [
            executor.submit(
                _fetch_batch,
                client,
                table=table,
                key_attribute=key_attribute,
                ids=batch,
                retry=retry,
                endpoint=endpoint,
            )
            for batch in batches
        ]
        sizes = {future: len(batch) for future, batch in zip(futures, batches, strict=True)}
        pending: set[Future[list[dict[str, Any]]]] = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for future in finished:
                raw.extend(future.result())  # re-raises the batch's error
                done += sizes[future]
                if progress is not None:
                    progress(done, len(session_ids))
    finally:
        # On an error, batches not yet started are dropped; running ones end with
        # their own (bounded) botocore timeouts.
        executor.shutdown(wait=True, cancel_futures=True)
    return _parse_items(raw, key_attribute)


def _fetch_batch(
    client: DynamoDBClient,
    *,
    table: str,
    key_attribute: str,
    ids: Sequence[str],
    retry: BatchRetry,
    endpoint: str,
) -> list[dict[str, Any]]:
    names = {"#k": key_attribute, "#v": "version", "#t": "turn", "#c": "cart"}
    keys: list[Any] = [{key_attribute: {"S": sid}} for sid in ids]
    items: list[dict[str, Any]] = []
    rng = random.Random()
    for round_index in range(retry.rounds + 1):
        if round_index:
            time.sleep(retry.delay_s(round_index - 1, rng))
        request: KeysAndAttributesTypeDef = {
            "Keys": keys,
            "ConsistentRead": True,
            "ProjectionExpression": "#k, #v, #t, #c",
            "ExpressionAttributeNames": names,
        }
        try:
            response = client.batch_get_item(RequestItems={table: request})
        except ClientError as exc:
            raise _client_error(
                exc, table=table, key_attribute=key_attribute, endpoint=endpoint
            ) from None
        except BotoCoreError as exc:
            raise _transport_error(exc, table=table, endpoint=endpoint) from None
        responses = response.get("Responses")
        if responses:
            items.extend(responses.get(table, []))
        unprocessed = response.get("UnprocessedKeys")
        keys = list(unprocessed[table]["Keys"]) if unprocessed and table in unprocessed else []
        if not keys:
            return items
    raise TargetUnreachable(
        f"DynamoDB left {len(keys)} key(s) of table {table!r} at {endpoint} unprocessed "
        f"after {retry.rounds} retries (throttled reads)",
        hint="re-run the audit when the table is quiet, with a lower concurrency, "
        "or raise the table's read capacity",
    )


def _client_error(
    exc: ClientError, *, table: str, key_attribute: str, endpoint: str
) -> LoadLabError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "unknown"))
    message = str(error.get("Message", "")).strip()
    said = f"{code}: {message}" if message else code
    if code == "ResourceNotFoundException":
        return ConfigError(
            f"DynamoDB table {table!r} does not exist at {endpoint}",
            hint="pass the table the agent checkpoints to (endpoints.table in "
            ".loadlab/stack.json for the embedded stack, LOADLAB_AGENT_TABLE for the agent; "
            "default loadlab-checkpoints) and the endpoint and region it lives in",
        )
    if code in _ACCESS_CODES:
        return ConfigError(
            f"not allowed to read DynamoDB table {table!r} at {endpoint} ({said})",
            hint="use credentials allowed dynamodb:BatchGetItem on that table (for the "
            "embedded stack: aws.access_key_id and aws.secret_access_key in .loadlab/stack.json)",
        )
    if code in _THROTTLE_CODES:
        return TargetUnreachable(
            f"DynamoDB throttled the reads of table {table!r} at {endpoint} ({said})",
            hint="re-run the audit when the table is quiet, with a lower concurrency, "
            "or raise the table's read capacity",
        )
    if code == "ValidationException":
        return ConfigError(
            f"DynamoDB refused the keys for table {table!r} at {endpoint} ({said})",
            hint=f"the table's partition key must be a string attribute named {key_attribute!r}; "
            "pass the right key_attribute or table",
        )
    return LoadLabError(f"DynamoDB BatchGetItem on table {table!r} at {endpoint} failed ({said})")


def _transport_error(exc: BotoCoreError, *, table: str, endpoint: str) -> LoadLabError:
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return ConfigError(
            f"no usable AWS credentials to read DynamoDB table {table!r} ({type(exc).__name__})",
            hint="set AWS credentials (for the embedded stack: aws.access_key_id and "
            "aws.secret_access_key in .loadlab/stack.json)",
        )
    if isinstance(exc, NoRegionError):
        return ConfigError(
            f"no AWS region set to read DynamoDB table {table!r}",
            hint="set AWS_DEFAULT_REGION or pass region_name to the client (embedded stack: "
            "aws.region in .loadlab/stack.json)",
        )
    return TargetUnreachable(
        f"cannot reach DynamoDB at {endpoint} to read table {table!r} ({type(exc).__name__}: "
        f"{exc})",
        hint="start the embedded stack (`loadlab up`) and pass its aws.endpoint_url from "
        ".loadlab/stack.json; against AWS, check the region, network and AWS_ENDPOINT_URL",
    )


def _parse_items(raw: list[dict[str, Any]], key_attribute: str) -> FetchedCheckpoints:
    items: dict[str, StoredCheckpoint] = {}
    problems: list[str] = []
    for item in raw:
        key = item.get(key_attribute, {}).get("S")
        if not isinstance(key, str):
            problems.append(f"an item without a string {key_attribute!r} was skipped")
            continue
        cart: dict[str, int] = {}
        raw_cart = item.get("cart", {}).get("M", {})
        for sku, value in sorted(raw_cart.items()):
            units = _number(value)
            if units is None:
                problems.append(f"{key}: cart entry {sku!r} is not a number; ignored")
            else:
                cart[sku] = units
        turn = _number(item.get("turn"))
        items[key] = StoredCheckpoint(
            version=_number(item.get("version")),
            turn=0 if turn is None else turn,
            cart=cart,
        )
    return FetchedCheckpoints(items=items, problems=tuple(problems))


def _number(value: Any) -> int | None:
    if not isinstance(value, Mapping) or not isinstance(value.get("N"), str):
        return None
    try:
        return int(Decimal(value["N"]))
    except (InvalidOperation, ValueError):
        return None


def _endpoint(client: DynamoDBClient) -> str:
    """The client's endpoint URL, with any user:password part removed."""
    url = str(getattr(client.meta, "endpoint_url", "") or "the default AWS endpoint")
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def dynamodb_client(
    *,
    endpoint_url: str | None,
    region: str,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    connect_timeout_s: float = 3.0,
    read_timeout_s: float = 20.0,
    max_attempts: int = 3,
) -> DynamoDBClient:
    """A DynamoDB client for the audit, with bounded timeouts and retries.

    ``endpoint_url`` None means AWS itself (or ``AWS_ENDPOINT_URL``). With
    explicit keys the user's ``AWS_PROFILE`` is ignored, so a profile missing on
    this machine cannot get in the way of the embedded stack's keys. Close the
    client after use.
    """
    import boto3
    import botocore.session
    from botocore.config import Config

    config = Config(
        connect_timeout=connect_timeout_s,
        read_timeout=read_timeout_s,
        retries={"max_attempts": max_attempts, "mode": "standard"},
    )
    if access_key_id is not None and secret_access_key is not None:
        no_profile = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
        session = boto3.session.Session(
            botocore_session=no_profile,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region,
        )
    else:
        session = boto3.session.Session(region_name=region)
    client: DynamoDBClient = session.client("dynamodb", endpoint_url=endpoint_url, config=config)
    return client
