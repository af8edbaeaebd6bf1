"""The session ledger and the in-band continuity verdict.

The shopper keeps its own account of the session: the turns it completed, the
cart those turns should have produced, and what the agent acknowledged after
each one (turn count, cart, checkpoint version). Comparing the two after every
successful turn is the in-band half of the continuity oracle (DESIGN.md, "The
session protocol and the continuity oracle"):

* ``clean``      no attempt of any turn failed, and the state always matched;
* ``resumed``    an attempt was interrupted, and the next successful turn found
                 the cart and the turn count intact;
* ``restarted``  state was lost: a cart item or turns gone, a removed item back,
                 or the checkpoint version going backwards;
* ``duplicated`` a side effect applied twice: more units than asked for, or the
                 turn count ahead of the turns played;
* ``failed``     the session could not finish (retries exhausted, a refusal,
                 stopped while a turn was still being retried, or no turn
                 completed at all: a session is never ``clean`` on no evidence).

Loss outranks duplication, which outranks failure: a lost cart is the finding,
even if the session later failed. The ledger is plain logic over values; it
does no I/O and keeps no clock of its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from loadlab.load.payloads import AgentState
from loadlab.rows import row_builder
from loadlab.scenario.script import Turn


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnCheck:
    """What the ledger concluded about one completed turn."""

    interrupted: bool
    resume_latency_ms: float | None
    violation: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionVerdict:
    """The ledger's verdict on a whole session."""

    verdict: str
    reason: str
    resume_latency_ms: float | None
    interrupted_turns: int
    turns_done: int
    checkpoint_version: int | None
    cart: tuple[tuple[str, int], ...]

    @property
    def cart_json(self) -> str:
        """The last acknowledged cart as a JSON object (sorted keys)."""
        return json.dumps(dict(self.cart), sort_keys=True)


# Made for every turn: built by loadlab.rows.row_builder, values in this order.
_turn_check = row_builder(TurnCheck, ("interrupted", "resume_latency_ms", "violation"))


class SessionLedger:
    """The shopper's account of one session, checked against the agent's.

    Call :meth:`attempt_failed` for each failed attempt, :meth:`turn_completed`
    when an attempt succeeds, :meth:`turn_abandoned` when a turn is given up,
    :meth:`stopped` if the session is cut short, and :meth:`verdict` at the end.
    ``tracks_state`` is False for endpoints that report no session state; their
    sessions can only be ``clean`` or ``failed``.
    """

    def __init__(self, *, session_id: str, tracks_state: bool = True) -> None:
        self.session_id = session_id
        self._tracks_state = tracks_state
        self._completed: list[Turn] = []
        # expected_cart(self._completed), kept up to date turn by turn (read twice a turn)
        self._cart: dict[str, int] = {}
        self._removed: set[str] = set()
        # SKUs the agent once held more of than asked: what a remove leaves of them
        # is the double add's remainder, not a lost removal.
        self._over_applied: set[str] = set()
        self._interrupted: set[int] = set()
        self._pending_since: float | None = None
        self._pending_turn: Turn | None = None
        self._pending_kind: str | None = None
        self._first_interruption: str | None = None
        self._resume_latency_ms: float | None = None
        self._lost: str | None = None
        self._duplicated: str | None = None
        self._failed: str | None = None
        self._stopped = False
        self._state: AgentState | None = None
        self._last_version: int | None = None

    @property
    def turns_done(self) -> int:
        """Turns completed so far."""
        return len(self._completed)

    @property
    def expected_cart(self) -> dict[str, int]:
        """The cart the shopper expects after the turns it completed (a copy)."""
        return dict(self._cart)

    @property
    def interrupted_turns(self) -> int:
        """Distinct turns that had at least one failed attempt."""
        return len(self._interrupted)

    @property
    def finished(self) -> bool:
        """True once a turn was abandoned: the session cannot go on."""
        return self._failed is not None

    def attempt_failed(self, turn: Turn, *, t_start: float, error_kind: str) -> None:
        """Note a failed attempt of ``turn`` that began at ``t_start`` (epoch seconds)."""
        self._interrupted.add(turn.index)
        if self._pending_since is None:
            self._pending_since = t_start
            self._pending_turn = turn
            self._pending_kind = error_kind
            if self._first_interruption is None:
                self._first_interruption = f"turn {turn.index} interrupted ({error_kind})"

    def turn_completed(
        self, turn: Turn, *, t_end: float, state: AgentState | None = None
    ) -> TurnCheck:
        """Record that ``turn`` succeeded, ending at ``t_end``, with the state acknowledged."""
        interrupted = turn.index in self._interrupted
        resume_ms: float | None = None
        if self._pending_since is not None:
            resume_ms = max(0.0, (t_end - self._pending_since) * 1000.0)
            if self._resume_latency_ms is None:
                self._resume_latency_ms = resume_ms
            self._pending_since = None
            self._pending_turn = None
            self._pending_kind = None
        self._completed.append(turn)
        if turn.sku is not None and turn.cart_delta:
            # one step of expected_cart(self._completed)
            units = self._cart.get(turn.sku, 0) + turn.cart_delta
            if units > 0:
                self._cart[turn.sku] = units
            else:
                self._cart.pop(turn.sku, None)
        if turn.cart_delta < 0 and turn.sku is not None:
            self._removed.add(turn.sku)
        violation = None
        if self._tracks_state and state is not None:
            violation = self._check(turn, state)
            self._state = state
        return _turn_check((interrupted, resume_ms, violation))

    def turn_abandoned(self, turn: Turn, *, reason: str) -> None:
        """Record that ``turn`` was given up (retries exhausted or a permanent error)."""
        if self._failed is None:
            self._failed = f"turn {turn.index} ({turn.intent}) failed: {reason}"

    def stopped(self) -> None:
        """Record that the session was cut short (its user was stopped)."""
        self._stopped = True

    def verdict(self) -> SessionVerdict:
        """Return the session's verdict from everything recorded so far."""
        verdict, reason = self._decide()
        state = self._state
        return SessionVerdict(
            verdict=verdict,
            reason=reason,
            resume_latency_ms=self._resume_latency_ms,
            interrupted_turns=self.interrupted_turns,
            turns_done=self.turns_done,
            checkpoint_version=None if state is None else state.version,
            cart=() if state is None else state.cart,
        )

    def _decide(self) -> tuple[str, str]:
        if self._lost is not None:
            return "restarted", self._lost
        if self._duplicated is not None:
            return "duplicated", self._duplicated
        if self._failed is not None:
            return "failed", self._failed
        if self._pending_turn is not None:
            # Stopped in the middle of retrying: the session never got its answer.
            turn = self._pending_turn
            return (
                "failed",
                f"stopped: turn {turn.index} interrupted ({self._pending_kind}) and not resumed",
            )
        if not self._completed:
            # Nothing was ever acknowledged: no evidence that the session is intact.
            if self._stopped:
                return "failed", "stopped before any turn completed"
            return "failed", "no turn completed"
        if self._stopped:
            return ("resumed" if self._interrupted and self._tracks_state else "clean"), "stopped"
        if not self._interrupted:
            return "clean", f"{self.turns_done} turns, no interruption"
        if not self._tracks_state:
            return (
                "clean",
                f"{self.interrupted_turns} interrupted turn(s) retried; "
                "the endpoint reports no session state to check",
            )
        return (
            "resumed",
            f"{self._first_interruption}; the next turn found cart and turn count intact",
        )

    def _check(self, turn: Turn, state: AgentState) -> str | None:
        expected_turns = self.turns_done
        version = state.version
        last = self._last_version
        if (
            state.turn == expected_turns
            and (version is None or last is None or version >= last)
            and dict(state.cart) == self._cart
        ):
            # The usual turn: all agrees, so the item by item comparison finds nothing.
            if version is not None:
                self._last_version = version
            return None
        return self._compare(turn, state)

    def _compare(self, turn: Turn, state: AgentState) -> str | None:
        """What the agent's state says against the ledger's, item by item (see _check)."""
        expected_turns = self.turns_done
        lost: list[str] = []
        duplicated: list[str] = []
        if state.turn < expected_turns:
            lost.append(f"agent reports {state.turn} turns after turn {expected_turns}")
        elif state.turn > expected_turns:
            duplicated.append(f"agent reports {state.turn} turns after turn {expected_turns}")
        want = self.expected_cart
        have = state.cart_dict()
        for item in sorted(set(want) | set(have)):
            asked, got = want.get(item, 0), have.get(item, 0)
            if got < asked:
                lost.append(f"{item}: {got} in cart, expected {asked}")
            elif got > asked and item in self._over_applied:
                duplicated.append(f"{item}: {got} in cart after an earlier double add")
            elif got > asked and asked == 0 and item in self._removed:
                lost.append(f"{item}: back in cart after it was removed")
            elif got > asked:
                self._over_applied.add(item)
                duplicated.append(f"{item}: {got} in cart, asked for {asked}")
        if state.version is not None:
            if self._last_version is not None and state.version < self._last_version:
                lost.append(
                    f"checkpoint version went back from {self._last_version} to {state.version}"
                )
            self._last_version = state.version
        where = f"turn {turn.index} ({turn.intent})"
        if lost and self._lost is None:
            self._lost = f"state lost at {where}: " + "; ".join(lost)
        if duplicated and self._duplicated is None:
            self._duplicated = f"applied twice at {where}: " + "; ".join(duplicated)
        problems = lost + duplicated
        return "; ".join(problems) if problems else None
