"""Prometheus metrics of one LLM simulator, in a registry of its own.

A per-app registry (not prometheus_client's global one) lets several simulators
live in one process, as they do in tests and in the embedded stack.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Real seconds; spans scaled test runs (ms) up to real slow completions (tens of s).
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 30)


class SimulatorMetrics:
    """The counters, gauge and histograms the simulator exports on ``/metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "loadlab_llm_requests",
            "Chat completion requests by final HTTP status (499: client went away).",
            ["status"],
            registry=r,
        )
        self.in_flight = Gauge(
            "loadlab_llm_requests_in_flight", "Admitted requests not yet finished.", registry=r
        )
        self.prompt_tokens = Counter(
            "loadlab_llm_prompt_tokens", "Prompt tokens of admitted requests.", registry=r
        )
        self.completion_tokens = Counter(
            "loadlab_llm_completion_tokens", "Completion tokens sent.", registry=r
        )
        self.rate_limited = Counter(
            "loadlab_llm_rate_limited",
            "Requests refused with 429, by reason (rpm, tpm, concurrency, fault).",
            ["reason"],
            registry=r,
        )
        self.ttft = Histogram(
            "loadlab_llm_ttft_seconds",
            "Real seconds from admission to the first token.",
            buckets=_BUCKETS,
            registry=r,
        )
        self.duration = Histogram(
            "loadlab_llm_request_duration_seconds",
            "Real seconds from admission to the last byte of a successful completion.",
            buckets=_BUCKETS,
            registry=r,
        )

    def render(self) -> bytes:
        """The registry in Prometheus text format."""
        return bytes(generate_latest(self.registry))
