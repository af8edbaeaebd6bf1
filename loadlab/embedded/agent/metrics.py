"""The agent's Prometheus metrics, in a registry of its own (one per app, not global)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

TURN_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 7.5, 10, 15, 20, 30, 60)


class AgentMetrics:
    """Turns by intent and status, turn latency, turns in flight, cold starts, init time.

    ``status`` is ``ok``, ``replayed``, ``error`` (an error event ended the stream),
    ``disconnected`` (the client went away), or the kind of a refused turn
    (``auth``, ``bad_request``, ``stale_turn``, …).
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.turns = Counter(
            "loadlab_agent_turns",
            "Turns handled, by intent and outcome.",
            ["intent", "status"],
            registry=self.registry,
        )
        self.turn_seconds = Histogram(
            "loadlab_agent_turn_seconds",
            "Time from request to the end of the turn's stream.",
            ["intent"],
            buckets=TURN_BUCKETS_S,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "loadlab_agent_turns_in_flight", "Turns being handled now.", registry=self.registry
        )
        self.cold_starts = Counter(
            "loadlab_agent_cold_starts",
            "Turns served as the first of their instance.",
            registry=self.registry,
        )
        self.init_seconds = Gauge(
            "loadlab_agent_init_seconds",
            "How long this instance took to initialise.",
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The registry in Prometheus text format."""
        return bytes(generate_latest(self.registry))
