"""Counters of what a load generator has in flight right now (for live status and chaos)."""

from __future__ import annotations

IN_FLIGHT_KEYS = (
    "turns_in_flight",
    "awaiting_first_token",
    "turns_in_flight_at_stake",
    "turns_in_flight_with_cart",
)


class InFlightCounters:
    """Turns in flight in this process, and how much state they put at stake.

    Updated by the agent client from Locust's greenlets (one OS thread, so plain
    integers are safe) and read about once a second for ``live.json``.

    * ``awaiting_first_token``: turns whose ``meta`` event arrived (the agent
      checkpointed and is calling the LLM) but whose first token has not: the
      window in which a kill tests resume-from-checkpoint;
    * ``turns_in_flight_at_stake``: turns of sessions past their first completed
      turn, whose agent-side state (history, checkpoint) a fault can lose;
    * ``turns_in_flight_with_cart``: turns of sessions whose cart is not empty,
      where a lost checkpoint or a repeated side effect shows in the cart.

    A fault that strikes while only first turns are in flight tests nothing:
    chaos actions wait on the last two (see ``wait_for_turns_in_flight``).
    """

    __slots__ = IN_FLIGHT_KEYS

    def __init__(self) -> None:
        self.turns_in_flight = 0
        self.awaiting_first_token = 0
        self.turns_in_flight_at_stake = 0
        self.turns_in_flight_with_cart = 0

    def snapshot(self) -> dict[str, int]:
        """The counters now, by name (the keys of ``live.json``)."""
        return {key: int(getattr(self, key)) for key in IN_FLIGHT_KEYS}


def total_in_flight(*snapshots: dict[str, int]) -> dict[str, int]:
    """Counters summed over load generators (the master's view of its workers)."""
    return {key: sum(int(s.get(key, 0)) for s in snapshots) for key in IN_FLIGHT_KEYS}
