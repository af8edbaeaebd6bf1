"""Prometheus pressure sources: scrape a ``/metrics`` endpoint, or ask a Prometheus server.

Both give the same rows: ``PressureSample(source="prometheus", metric=<sample
name>, value, dimensions_json=<labels>)``, where the sample name is what
Prometheus stores (``loadlab_llm_requests_total``,
``loadlab_llm_ttft_seconds_bucket`` ...) and the labels include ``instance``.

* :class:`PrometheusScrape` reads a target's text exposition itself (the LLM
  simulator locally); ``instance`` is the URL it scraped. Parsing is
  prometheus_client's own parser.
* :class:`PrometheusQuery` asks a real Prometheus (``/api/v1/query``, e.g. on
  EKS, where it scrapes every agent pod) for the series whose names match the
  allow-list; ``instance`` and the other labels are Prometheus's own.

Only names matching the allow-list (shell-style patterns, matched against the
sample name or its family name) are kept; ``*_created`` samples (a counter's
creation time, not a value) never are.
"""

from __future__ import annotations

import json
import math
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from prometheus_client.parser import text_string_to_metric_families

from loadlab.errors import ConfigError
from loadlab.rows import PressureSample

SOURCE = "prometheus"
LLM_METRICS: tuple[str, ...] = ("loadlab_llm_*",)
"""The LLM simulator's counters, gauge and latency histograms."""
AGENT_METRICS: tuple[str, ...] = ("loadlab_agent_*",)
"""The reference agent's turn counters, latency histogram, cold starts and init time."""
DEFAULT_METRICS: tuple[str, ...] = LLM_METRICS + AGENT_METRICS
QUERY_PATH = "/api/v1/query"

Fetch = Callable[[str, float], bytes]
"""``fetch(url, timeout_s) -> body``: the HTTP GET both sources use (swappable in tests)."""


def http_get(url: str, timeout_s: float) -> bytes:
    """GET ``url`` and return the body; raises ``OSError`` (URLError, HTTPError) on failure."""
    request = urllib.request.Request(url, headers={"Accept": "text/plain, application/json"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        body: bytes = response.read()
        return body


def dimensions_json(labels: dict[str, str]) -> str:
    """Labels as the compact, key-sorted JSON of ``PressureSample.dimensions_json``."""
    return json.dumps(labels, sort_keys=True, separators=(",", ":"))


def redact(url: str) -> str:
    """``url`` without credentials or fragment, for logs and dimensions."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def _allowed(patterns: Sequence[str], *names: str) -> bool:
    return any(fnmatchcase(name, p) for p in patterns for name in names)


def _check_url(url: str, what: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{what} {url!r} is not an http(s) URL",
            hint="give the full URL, e.g. http://127.0.0.1:9000/metrics",
        )


def _hint(url: str, error: Exception) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"{url} answered HTTP {error.code}: check the path (usually /metrics)"
    if isinstance(error, OSError):
        return f"check that {url} is up and reachable from this machine (curl {url})"
    return f"check that {url} serves Prometheus text format (curl {url})"


class PrometheusScrape:
    """Scrapes one Prometheus text endpoint; every allowed sample becomes a row."""

    def __init__(
        self,
        *,
        url: str,
        metrics: Sequence[str] = DEFAULT_METRICS,
        timeout_s: float = 3.0,
        fetch: Fetch = http_get,
        clock: Callable[[], float] = time.time,
    ) -> None:
        _check_url(url, "Prometheus endpoint")
        if not metrics:
            raise ConfigError(
                f"no metric names allowed for {redact(url)}",
                hint="give at least one pattern, e.g. loadlab_llm_*",
            )
        self.url = url
        self.metrics = tuple(metrics)
        self._timeout_s = timeout_s
        self._fetch = fetch
        self._clock = clock
        self._instance = redact(url)

    @property
    def label(self) -> str:
        """``prometheus <url>``."""
        return f"{SOURCE} {self._instance}"

    def sample(self, *, final: bool = False) -> list[PressureSample]:
        """Scrape once; each allowed sample is a row stamped with the scrape time."""
        body = self._fetch(self.url, self._timeout_s)
        now = self._clock()
        rows: list[PressureSample] = []
        for family in text_string_to_metric_families(body.decode("utf-8")):
            for s in family.samples:
                if s.name.endswith("_created"):
                    continue
                if not _allowed(self.metrics, s.name, family.name):
                    continue
                labels = {**s.labels, "instance": self._instance}
                t = float(s.timestamp) if s.timestamp is not None else now
                rows.append(
                    PressureSample(
                        t=t,
                        source=SOURCE,
                        metric=s.name,
                        value=float(s.value),
                        dimensions_json=dimensions_json(labels),
                    )
                )
        return rows

    def hint(self, error: Exception) -> str:
        """How to fix a failed scrape."""
        return _hint(self._instance, error)


def name_selector(patterns: Sequence[str]) -> str:
    """A PromQL selector for the series whose names match shell-style ``patterns``."""
    regex = "|".join(re.escape(p).replace(r"\*", ".*").replace(r"\?", ".") for p in patterns)
    return "{__name__=~" + json.dumps(regex) + "}"


class PrometheusQuery:
    """Asks a Prometheus server (``/api/v1/query``) for the allowed series, now."""

    def __init__(
        self,
        *,
        url: str,
        metrics: Sequence[str] = DEFAULT_METRICS,
        timeout_s: float = 5.0,
        fetch: Fetch = http_get,
    ) -> None:
        _check_url(url, "Prometheus query URL")
        parts = urlsplit(url)
        path = parts.path.rstrip("/")
        if not path.endswith(QUERY_PATH):
            path += QUERY_PATH
        self.url = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
        if not metrics:
            raise ConfigError(
                f"no metric names allowed for {redact(url)}",
                hint="give at least one pattern, e.g. loadlab_agent_*",
            )
        self.metrics = tuple(metrics)
        self._query = name_selector(self.metrics)
        self._timeout_s = timeout_s
        self._fetch = fetch

    @property
    def label(self) -> str:
        """``prometheus-query <url>``."""
        return f"{SOURCE}-query {redact(self.url)}"

    def sample(self, *, final: bool = False) -> list[PressureSample]:
        """One instant query; each returned series is a row at the evaluation time."""
        body = self._fetch(f"{self.url}?{urlencode({'query': self._query})}", self._timeout_s)
        return query_rows(json.loads(body))

    def hint(self, error: Exception) -> str:
        """How to fix a failed query."""
        if isinstance(error, (ValueError, KeyError, TypeError)):
            return (
                f"{redact(self.url)} did not answer like a Prometheus query API; point "
                "--pressure-prometheus at the server's base URL + /api/v1/query"
            )
        return _hint(redact(self.url), error)


def query_rows(answer: Any) -> list[PressureSample]:
    """Rows from a Prometheus ``/api/v1/query`` JSON answer (an instant vector)."""
    if not isinstance(answer, dict) or answer.get("status") != "success":
        error = answer.get("error") if isinstance(answer, dict) else None
        raise ValueError(f"the query failed: {error or answer!r}"[:300])
    data = answer["data"]
    if data.get("resultType") != "vector":
        raise ValueError(f"expected an instant vector, got {data.get('resultType')!r}")
    rows: list[PressureSample] = []
    for series in data["result"]:
        labels = {str(k): str(v) for k, v in series["metric"].items()}
        name = labels.pop("__name__", "")
        if not name or name.endswith("_created"):
            continue
        t, value = series["value"]
        number = float(value)  # Prometheus sends "NaN", "+Inf" as strings; float() reads them
        if math.isnan(number):
            continue
        rows.append(
            PressureSample(
                t=float(t),
                source=SOURCE,
                metric=name,
                value=number,
                dimensions_json=dimensions_json(labels),
            )
        )
    return rows
