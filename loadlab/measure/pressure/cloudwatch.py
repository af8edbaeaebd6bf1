"""CloudWatch pressure source: AWS's own DynamoDB, Lambda and Bedrock metrics via GetMetricData.

The namespaces, metric names and dimensions are exactly AWS's, so the same
source reads a real account or the embedded stack's ministack (boto3 honours
``AWS_ENDPOINT_URL``). The client is passed in.

Which series: the metrics of :data:`AWS_METRICS` under the dimension sets
listed there. They are found with ``ListMetrics`` (refreshed every
``rediscover_s``, default 5 periods but at most 30 s, and at the final poll, so
a table or function that first reports mid-run is picked up), restricted to the
resource names given in ``resources`` (``{"TableName": [...], "FunctionName":
[...], "ModelId": [...]}``; ``*`` = all),
plus the plain per-resource series of every name given, which are queried even
before ``ListMetrics`` knows them.

Each poll asks for a window of the last ``lookback_s`` seconds (default 10
periods, at least 60 s) at ``period_s``
resolution (60 s on AWS, down to 1 s on the embedded stack), with the
statistics of each metric (Sum, SampleCount, Maximum: never percentiles, which
loadlab computes itself). Every returned datapoint becomes
``PressureSample(t=<period start>, source="cloudwatch",
metric="<Namespace>/<MetricName>", value, dimensions_json=<dimensions + stat +
period_s>)``. A datapoint is emitted once its period ended ``settle_s`` ago (or
on the final poll); one already emitted is not emitted again unless CloudWatch
revised its value (late data), in which case the new value is emitted with the
same ``t``: for each (t, metric, dimensions) the last row wins.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from loadlab.errors import ConfigError
from loadlab.rows import PressureSample

if TYPE_CHECKING:
    from types_boto3_cloudwatch.client import CloudWatchClient

log = logging.getLogger("loadlab.pressure")

SOURCE = "cloudwatch"
_COUNT = ("Sum",)
_TIMING = ("SampleCount", "Sum", "Maximum")
_TABLE = frozenset({"TableName"})
_FUNCTION = frozenset({"FunctionName"})
_MODEL = frozenset({"ModelId"})
_MAX_QUERIES = 500  # GetMetricData's limit per call
_MAX_PAGES = 20
_MAX_LIST_PAGES = 20


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One AWS metric: where it lives, the dimension sets loadlab reads, the stats it asks for."""

    namespace: str
    name: str
    dimension_sets: tuple[frozenset[str], ...]
    stats: tuple[str, ...]


AWS_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("AWS/DynamoDB", "ConsumedReadCapacityUnits", (_TABLE,), ("Sum", "SampleCount")),
    MetricSpec("AWS/DynamoDB", "ConsumedWriteCapacityUnits", (_TABLE,), ("Sum", "SampleCount")),
    MetricSpec("AWS/DynamoDB", "ReadThrottleEvents", (_TABLE,), _COUNT),
    MetricSpec("AWS/DynamoDB", "WriteThrottleEvents", (_TABLE,), _COUNT),
    MetricSpec(
        "AWS/DynamoDB", "ThrottledRequests", (frozenset({"TableName", "Operation"}),), _COUNT
    ),
    MetricSpec("AWS/Lambda", "Invocations", (_FUNCTION,), _COUNT),
    MetricSpec("AWS/Lambda", "Errors", (_FUNCTION,), _COUNT),
    MetricSpec("AWS/Lambda", "Throttles", (_FUNCTION,), _COUNT),
    MetricSpec("AWS/Lambda", "Duration", (_FUNCTION,), _TIMING),
    MetricSpec("AWS/Lambda", "ConcurrentExecutions", (_FUNCTION,), ("Maximum",)),
    MetricSpec("AWS/Bedrock", "Invocations", (_MODEL,), _COUNT),
    MetricSpec("AWS/Bedrock", "InvocationThrottles", (_MODEL,), _COUNT),
    MetricSpec("AWS/Bedrock", "InputTokenCount", (_MODEL,), _COUNT),
    MetricSpec("AWS/Bedrock", "OutputTokenCount", (_MODEL,), _COUNT),
    MetricSpec("AWS/Bedrock", "InvocationLatency", (_MODEL,), _TIMING),
)
"""What loadlab reads from CloudWatch."""

RESOURCE_DIMENSION: dict[str, str] = {
    "AWS/DynamoDB": "TableName",
    "AWS/Lambda": "FunctionName",
    "AWS/Bedrock": "ModelId",
}
"""The dimension naming the resource in each namespace (what ``resources`` filters on)."""

ALL = "*"


@dataclass(frozen=True, slots=True)
class MetricSeries:
    """One CloudWatch series: a metric with its dimension values (sorted by name)."""

    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]


def valid_period(period_s: int) -> bool:
    """Whether CloudWatch accepts ``period_s`` (1, 5, 10, 30 or a multiple of 60)."""
    return period_s in (1, 5, 10, 30) or (period_s > 0 and period_s % 60 == 0)


class CloudWatchSource:
    """Samples AWS/DynamoDB, AWS/Lambda and AWS/Bedrock through one CloudWatch client."""

    def __init__(
        self,
        *,
        client: CloudWatchClient,
        resources: Mapping[str, Sequence[str]] | None = None,
        period_s: int = 60,
        lookback_s: float | None = None,
        settle_s: float | None = None,
        rediscover_s: float | None = None,
        max_series: int = 200,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not valid_period(period_s):
            raise ConfigError(
                f"CloudWatch period {period_s!r} s is not one CloudWatch accepts",
                hint="use 1, 5, 10, 30 or a multiple of 60 (AWS's own metrics: 60)",
            )
        picked = {k: tuple(v) for k, v in (resources or {}).items() if v}
        unknown = set(picked) - set(RESOURCE_DIMENSION.values())
        if unknown:
            raise ConfigError(
                f"unknown CloudWatch resource dimension(s) {sorted(unknown)}",
                hint=f"use {sorted(RESOURCE_DIMENSION.values())}",
            )
        self._client = client
        # No names at all: every namespace, every resource. Some names: only those namespaces.
        self._resources: dict[str, tuple[str, ...]] = (
            picked if picked else dict.fromkeys(RESOURCE_DIMENSION.values(), (ALL,))
        )
        self.period_s = period_s
        self.lookback_s = (
            float(lookback_s) if lookback_s is not None else max(10.0 * period_s, 60.0)
        )
        self.settle_s = float(settle_s) if settle_s is not None else float(period_s)
        self._rediscover_s = (
            float(rediscover_s) if rediscover_s is not None else min(30.0, 5.0 * period_s)
        )
        self._max_series = max_series
        self._clock = clock
        self.specs = tuple(
            s for s in AWS_METRICS if RESOURCE_DIMENSION[s.namespace] in self._resources
        )
        self._discovered: tuple[MetricSeries, ...] = ()
        self._discovered_at: float | None = None
        self._emitted: dict[tuple[MetricSeries, str, float], float] = {}
        self._warned_cap = False

    @property
    def label(self) -> str:
        """``cloudwatch <endpoint>``."""
        return f"{SOURCE} {self._client.meta.endpoint_url}"

    # -- which series -----------------------------------------------------------------

    def series(self) -> tuple[MetricSeries, ...]:
        """The series queried now: the named ones and those ListMetrics found."""
        named = [
            MetricSeries(spec.namespace, spec.name, ((dim, value),))
            for spec in self.specs
            for dim in [RESOURCE_DIMENSION[spec.namespace]]
            if frozenset({dim}) in spec.dimension_sets
            for value in self._resources[dim]
            if value != ALL
        ]
        merged = list(dict.fromkeys([*named, *self._discovered]))
        if len(merged) > self._max_series:
            if not self._warned_cap:
                self._warned_cap = True
                log.warning(
                    "CloudWatch: %d series match; sampling the first %d (name the tables, "
                    "functions or models to sample with --pressure-dynamodb-table, "
                    "--pressure-lambda-function, --pressure-bedrock-model)",
                    len(merged),
                    self._max_series,
                )
            merged = merged[: self._max_series]
        return tuple(merged)

    def discover(self) -> tuple[MetricSeries, ...]:
        """List the matching series (``ListMetrics``, one listing per namespace)."""
        wanted = {(s.namespace, s.name): s for s in self.specs}
        found: list[MetricSeries] = []
        for namespace in dict.fromkeys(s.namespace for s in self.specs):
            for metric in self._list_metrics(namespace):
                spec = wanted.get((namespace, metric.get("MetricName", "")))
                if spec is None:
                    continue
                dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
                if frozenset(dims) not in spec.dimension_sets or not self._picked(namespace, dims):
                    continue
                found.append(MetricSeries(namespace, spec.name, tuple(sorted(dims.items()))))
        return tuple(sorted(set(found), key=lambda s: (s.namespace, s.name, s.dimensions)))

    def _picked(self, namespace: str, dims: Mapping[str, str]) -> bool:
        dim = RESOURCE_DIMENSION[namespace]
        names = self._resources.get(dim, ())
        return ALL in names or dims.get(dim) in names

    def _list_metrics(self, namespace: str) -> Iterable[Mapping[str, Any]]:
        token: str | None = None
        for _ in range(_MAX_LIST_PAGES):
            page = (
                self._client.list_metrics(Namespace=namespace, NextToken=token)
                if token
                else self._client.list_metrics(Namespace=namespace)
            )
            yield from page.get("Metrics", [])
            token = page.get("NextToken")
            if not token:
                return

    # -- sampling ---------------------------------------------------------------------

    def sample(self, *, final: bool = False) -> list[PressureSample]:
        """Query the window and return the datapoints not emitted before (see module doc)."""
        now = self._clock()
        due = self._discovered_at is None or now - self._discovered_at >= self._rediscover_s
        if due or final:
            self._discovered = self.discover()
            self._discovered_at = now
        series = self.series()
        if not series:
            return []
        period = self.period_s
        start = math.floor((now - self.lookback_s) / period) * period
        end = math.ceil(now / period) * period
        cutoff = math.inf if final else now - self.settle_s
        rows: list[PressureSample] = []
        for (one, stat), t, value in self._query(series, start, end):
            if t + period > cutoff:
                continue
            key = (one, stat, t)
            if self._emitted.get(key) == value:
                continue
            self._emitted[key] = value
            rows.append(_row(one, stat, period, t, value))
        # A datapoint older than the window can never come back: forget it.
        self._emitted = {k: v for k, v in self._emitted.items() if k[2] >= start}
        rows.sort(key=lambda r: r.t)
        return rows

    def _query(
        self, series: Sequence[MetricSeries], start: float, end: float
    ) -> Iterable[tuple[tuple[MetricSeries, str], float, float]]:
        stats = {(s.namespace, s.name): s.stats for s in self.specs}
        queries = [(one, stat) for one in series for stat in stats[(one.namespace, one.name)]]
        for first in range(0, len(queries), _MAX_QUERIES):
            chunk = queries[first : first + _MAX_QUERIES]
            request: list[Any] = [
                {
                    "Id": f"q{i}",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": one.namespace,
                            "MetricName": one.name,
                            "Dimensions": [{"Name": k, "Value": v} for k, v in one.dimensions],
                        },
                        "Period": self.period_s,
                        "Stat": stat,
                    },
                    "ReturnData": True,
                }
                for i, (one, stat) in enumerate(chunk)
            ]
            token: str | None = None
            for _ in range(_MAX_PAGES):
                kwargs: dict[str, Any] = {
                    "MetricDataQueries": request,
                    "StartTime": datetime.fromtimestamp(start, UTC),
                    "EndTime": datetime.fromtimestamp(end, UTC),
                    "ScanBy": "TimestampAscending",
                }
                if token:
                    kwargs["NextToken"] = token
                answer = self._client.get_metric_data(**kwargs)
                for result in answer.get("MetricDataResults", []):
                    index = int(result["Id"][1:])
                    for stamp, value in zip(result["Timestamps"], result["Values"], strict=False):
                        yield chunk[index], stamp.timestamp(), float(value)
                token = answer.get("NextToken")
                if not token:
                    break

    def hint(self, error: Exception) -> str:
        """How to fix a failed CloudWatch call."""
        text = f"{type(error).__name__} {error}"
        if "NoCredentials" in text or "Unable to locate credentials" in text:
            return "give loadlab AWS credentials (AWS_PROFILE, or AWS_ACCESS_KEY_ID/..._SECRET...)"
        if "AccessDenied" in text or "not authorized" in text:
            return "allow cloudwatch:GetMetricData and cloudwatch:ListMetrics for these credentials"
        if "EndpointConnectionError" in text or "Could not connect" in text:
            return (
                f"check that {self._client.meta.endpoint_url} is reachable "
                "(AWS_ENDPOINT_URL points at the embedded stack's ministack when run locally)"
            )
        return "check the AWS region and endpoint (AWS_REGION, AWS_ENDPOINT_URL)"


def _row(one: MetricSeries, stat: str, period_s: int, t: float, value: float) -> PressureSample:
    dims = {**dict(one.dimensions), "stat": stat, "period_s": period_s}
    return PressureSample(
        t=t,
        source=SOURCE,
        metric=f"{one.namespace}/{one.name}",
        value=value,
        dimensions_json=json.dumps(dims, sort_keys=True, separators=(",", ":")),
    )
