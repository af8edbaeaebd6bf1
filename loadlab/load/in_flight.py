"""Counters of what a load generator has in flight right now (for live status and chaos)."""

from __future__ import annotations


class InFlightCounters:
    """Turns in flight in this process, and those waiting for their first token.

    Updated by the agent client from Locust's greenlets (one OS thread, so plain
    integers are safe) and read about once a second for ``live.json``.
    ``awaiting_first_token`` counts turns whose ``meta`` event arrived (the agent
    checkpointed and is calling the LLM) but whose first token has not: the window
    in which a kill tests resume-from-checkpoint.
    """

    __slots__ = ("awaiting_first_token", "turns_in_flight")

    def __init__(self) -> None:
        self.turns_in_flight = 0
        self.awaiting_first_token = 0
