"""Publishes the embedded stack's downstream figures to ministack's CloudWatch under AWS's names.

On AWS, Bedrock and DynamoDB report their own metrics to CloudWatch. Locally the
LLM simulator and the DynamoDB gate only expose Prometheus counters, so every
few seconds the :class:`CloudWatchPublisher` reads them and ``PutMetricData``\\s
the increments into ministack as AWS would name them. loadlab's CloudWatch
sampler then reads them back with ``GetMetricData``: the same code path as
against a real account.

What is published (one datum per metric and interval, timestamped at the read,
``StorageResolution`` 1):

``AWS/Bedrock`` (dimension ``ModelId``, the simulator's model from ``/v1/models``)
    ``Invocations`` (admitted requests that finished, Count),
    ``InvocationThrottles`` (429s, Count), ``InputTokenCount`` and
    ``OutputTokenCount`` (Count), and ``InvocationLatency`` (Milliseconds, a
    statistic set: exact SampleCount and Sum; Minimum and Maximum are the bounds
    of the histogram buckets that were hit), from the simulator's ``/metrics``.
``AWS/DynamoDB`` (dimensions ``TableName``, and ``Operation`` for ``ThrottledRequests``)
    from the DynamoDB gate's ``/metrics`` when one is given: see
    :data:`DYNAMODB_COUNTERS` for the counters it is read from.

Counter resets (a restarted process) count from zero again. A failing read or
put is logged once and retried at the next interval; it never stops the stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    from types_boto3_cloudwatch.client import CloudWatchClient
    from types_boto3_cloudwatch.type_defs import MetricDatumTypeDef, StatisticSetTypeDef

log = logging.getLogger("loadlab.embedded.cloudwatch_publisher")

DEFAULT_MODEL_ID = "loadlab-sim-1"
_LATENCY_FAMILY = "loadlab_llm_request_duration_seconds"
_MAX_DATA_PER_PUT = 500  # PutMetricData's limit per call

DYNAMODB_COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "loadlab_ddb_consumed_read_capacity_units": ("ConsumedReadCapacityUnits", ("TableName",)),
    "loadlab_ddb_consumed_write_capacity_units": (
        "ConsumedWriteCapacityUnits",
        ("TableName",),
    ),
    "loadlab_ddb_read_throttle_events": ("ReadThrottleEvents", ("TableName",)),
    "loadlab_ddb_write_throttle_events": ("WriteThrottleEvents", ("TableName",)),
    "loadlab_ddb_throttled_requests": ("ThrottledRequests", ("TableName", "Operation")),
}
"""DynamoDB gate counter family -> (AWS/DynamoDB metric, its dimensions).

The gate's labels ``table`` and ``operation`` (or ``TableName``/``Operation``)
give the dimension values.
"""
_LABEL_TO_DIMENSION = {
    "table": "TableName",
    "table_name": "TableName",
    "TableName": "TableName",
    "operation": "Operation",
    "Operation": "Operation",
}


@dataclass(frozen=True, slots=True)
class Reading:
    """Cumulative counters read from one ``/metrics`` page, keyed by (metric, dimensions)."""

    counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)
    latency_count: float = 0.0
    latency_sum_s: float = 0.0
    latency_buckets: tuple[tuple[float, float], ...] = ()
    latency_dimensions: tuple[tuple[str, str], ...] = ()


def read_llm(text: str, model_id: str) -> Reading:
    """The LLM simulator's counters, under their ``AWS/Bedrock`` names."""
    dims: tuple[tuple[str, str], ...] = (("ModelId", model_id),)
    counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {
        ("Invocations", dims): 0.0,
        ("InvocationThrottles", dims): 0.0,
        ("InputTokenCount", dims): 0.0,
        ("OutputTokenCount", dims): 0.0,
    }
    count = total = 0.0
    buckets: list[tuple[float, float]] = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "loadlab_llm_requests_total":
                status = s.labels.get("status", "")
                if status == "429":
                    counters[("InvocationThrottles", dims)] += s.value
                elif not status.startswith("4") or status == "499":
                    # 499 (the client went away mid-answer) was still an invocation.
                    counters[("Invocations", dims)] += s.value
            elif s.name == "loadlab_llm_prompt_tokens_total":
                counters[("InputTokenCount", dims)] += s.value
            elif s.name == "loadlab_llm_completion_tokens_total":
                counters[("OutputTokenCount", dims)] += s.value
            elif s.name == f"{_LATENCY_FAMILY}_count":
                count = s.value
            elif s.name == f"{_LATENCY_FAMILY}_sum":
                total = s.value
            elif s.name == f"{_LATENCY_FAMILY}_bucket":
                buckets.append((float(s.labels["le"]), s.value))
    return Reading(
        counters=counters,
        latency_count=count,
        latency_sum_s=total,
        latency_buckets=tuple(sorted(buckets)),
        latency_dimensions=dims,
    )


def read_dynamodb(text: str) -> Reading:
    """The DynamoDB gate's counters (see :data:`DYNAMODB_COUNTERS`), under AWS's names."""
    counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            known = DYNAMODB_COUNTERS.get(s.name.removesuffix("_total"))
            if known is None:
                continue
            metric, wanted = known
            # Labels the AWS metric lacks (e.g. the operation of consumed capacity) are summed over.
            dims = {
                _LABEL_TO_DIMENSION[k]: v
                for k, v in s.labels.items()
                if _LABEL_TO_DIMENSION.get(k) in wanted
            }
            if set(dims) != set(wanted):
                continue
            key = (metric, tuple(sorted(dims.items())))
            counters[key] = counters.get(key, 0.0) + s.value
    return Reading(counters=counters)


def _increase(now: float, before: float) -> float:
    return now - before if now >= before else now  # below before: the process restarted


def datums(current: Reading, previous: Reading | None, *, at: datetime) -> list[MetricDatumTypeDef]:
    """``MetricData`` for the increase from ``previous`` (or from zero) to ``current``."""
    out: list[MetricDatumTypeDef] = []
    before = previous.counters if previous is not None else {}
    for (name, dims), value in sorted(current.counters.items()):
        out.append(
            {
                "MetricName": name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dims],
                "Timestamp": at,
                "Value": _increase(value, before.get((name, dims), 0.0)),
                "Unit": "Count",
                "StorageResolution": 1,
            }
        )
    latency = _latency(current, previous)
    if latency is not None:
        out.append(
            {
                "MetricName": "InvocationLatency",
                "Dimensions": [{"Name": k, "Value": v} for k, v in current.latency_dimensions],
                "Timestamp": at,
                "StatisticValues": latency,
                "Unit": "Milliseconds",
                "StorageResolution": 1,
            }
        )
    return out


def _latency(current: Reading, previous: Reading | None) -> StatisticSetTypeDef | None:
    """A statistic set (ms) of the completions between two readings, or ``None`` if none.

    SampleCount and Sum are exact; Minimum and Maximum are the lower bound of the
    lowest and the upper bound of the highest histogram bucket that was hit.
    """
    restarted = previous is None or current.latency_count < previous.latency_count
    base = Reading() if restarted or previous is None else previous
    count = current.latency_count - base.latency_count
    if count <= 0:
        return None
    total_ms = (current.latency_sum_s - base.latency_sum_s) * 1000.0
    mean = total_ms / count
    old = dict(base.latency_buckets)
    hit: list[tuple[float, float]] = []
    lower = seen = 0.0
    for bound, cumulative in current.latency_buckets:
        upto = cumulative - old.get(bound, 0.0)
        if upto > seen:
            hit.append((lower, bound if math.isfinite(bound) else lower))
        seen = upto
        if math.isfinite(bound):
            lower = bound
    low, high = (hit[0][0] * 1000.0, hit[-1][1] * 1000.0) if hit else (mean, mean)
    return {
        "SampleCount": count,
        "Sum": total_ms,
        "Minimum": min(low, mean),
        "Maximum": max(high, mean),
    }


def ministack_cloudwatch_client(
    *, endpoint_url: str, region: str, access_key_id: str, secret_access_key: str
) -> CloudWatchClient:
    """A CloudWatch client for the embedded stack's ministack (no profile, short timeouts)."""
    import boto3
    import botocore.session
    from botocore.config import Config

    # The user's AWS_PROFILE (maybe absent from this machine) must not matter here.
    no_profile = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
    return boto3.session.Session(
        botocore_session=no_profile,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        region_name=region,
    ).client(
        "cloudwatch",
        endpoint_url=endpoint_url,
        config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}),
    )


class CloudWatchPublisher:
    """Every ``interval_s``, puts the LLM simulator's (and DynamoDB gate's) figures into CloudWatch.

    Runs as a task on the event loop that calls :meth:`start`; ``PutMetricData``
    (boto3, blocking) runs in a worker thread.
    """

    def __init__(
        self,
        *,
        client: CloudWatchClient,
        llm_url: str,
        interval_s: float,
        dynamodb_metrics_url: str | None = None,
        model_id: str | None = None,
        timeout_s: float = 3.0,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be > 0, not {interval_s!r}")
        self._client = client
        self._llm_url = llm_url.rstrip("/")
        self._ddb_url = dynamodb_metrics_url
        self.interval_s = interval_s
        self.model_id = model_id
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._http: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._previous: dict[str, Reading] = {}
        self._failed: set[str] = set()
        self.published = 0
        self.errors = 0

    async def start(self) -> None:
        """Start publishing in the background (the first round runs at once)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="loadlab-cloudwatch-publisher")

    async def stop(self) -> None:
        """Stop publishing and close the HTTP session and the client; idempotent."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        http, self._http = self._http, None
        if http is not None:
            await http.close()
        self._client.close()

    async def publish_once(self) -> int:
        """Read every source and put the increases; returns the datums put (0 on failure).

        Called by the background task; callable directly too (then ``stop`` closes it).
        """
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=self._timeout)
        data: list[MetricDatumTypeDef] = []
        at = datetime.now(UTC)
        if self.model_id is None:
            self.model_id = await self._model_id()
        llm = await self._read("llm", f"{self._llm_url}/metrics")
        if llm is not None:
            data += self._increase("llm", read_llm(llm, self.model_id), at)
        ddb = None if self._ddb_url is None else await self._read("dynamodb", self._ddb_url)
        if ddb is not None:
            data += self._increase("dynamodb", read_dynamodb(ddb), at)
        put = 0
        for namespace, batch in _by_namespace(data):
            try:
                await asyncio.to_thread(self._put, namespace, batch)
            except Exception as exc:  # ministack down or refusing: try again next round
                self._once(f"put {namespace}", f"PutMetricData into {namespace} failed: {exc}")
                continue
            put += len(batch)
        self.published += put
        return put

    def _put(self, namespace: str, batch: list[MetricDatumTypeDef]) -> None:
        for first in range(0, len(batch), _MAX_DATA_PER_PUT):
            self._client.put_metric_data(
                Namespace=namespace, MetricData=batch[first : first + _MAX_DATA_PER_PUT]
            )

    def _increase(self, key: str, reading: Reading, at: datetime) -> list[MetricDatumTypeDef]:
        out = datums(reading, self._previous.get(key), at=at)
        self._previous[key] = reading
        return out

    async def _model_id(self) -> str:
        assert self._http is not None
        try:
            async with self._http.get(f"{self._llm_url}/v1/models") as response:
                body = await response.json()
            return str(body["data"][0]["id"])
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, IndexError, TypeError):
            return DEFAULT_MODEL_ID

    async def _read(self, key: str, url: str) -> str | None:
        assert self._http is not None
        try:
            async with self._http.get(url) as response:
                response.raise_for_status()
                return await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._once(f"read {key}", f"could not read {url}: {exc!r}")
            return None

    def _once(self, kind: str, message: str) -> None:
        self.errors += 1
        if kind not in self._failed:
            self._failed.add(kind)
            log.warning("cloudwatch publisher: %s (retried every %g s)", message, self.interval_s)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await self.publish_once()
            except Exception:  # publishing is a convenience: the stack goes on without it
                self.errors += 1
                log.exception("cloudwatch publisher: a round failed")
            await asyncio.sleep(max(0.0, self.interval_s - (loop.time() - started)))


def _by_namespace(data: Iterable[MetricDatumTypeDef]) -> list[tuple[str, list[MetricDatumTypeDef]]]:
    groups: dict[str, list[MetricDatumTypeDef]] = {}
    for datum in data:
        namespace = _NAMESPACE_OF.get(datum["MetricName"], "AWS/Bedrock")
        groups.setdefault(namespace, []).append(datum)
    return list(groups.items())


_NAMESPACE_OF: Mapping[str, str] = {
    metric: "AWS/DynamoDB" for metric, _ in DYNAMODB_COUNTERS.values()
}
