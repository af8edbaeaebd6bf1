"""A session's state as the agent holds it, and the downstream counts of one turn."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

APPLIED_KEYS_KEPT = 32
HISTORY_KEPT = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionState:
    """One shopping session: what the checkpoint item holds.

    The mappings are never mutated: every change builds a new state, so a state
    in the hot cache is always one that was (or, by mode, would have been)
    checkpointed as a whole.
    """

    session_id: str
    turn: int = 0
    version: int = 0
    cart: Mapping[str, int] = field(default_factory=dict)
    # idempotency key -> the turn it produced, oldest first
    applied_keys: Mapping[str, int] = field(default_factory=dict)
    history: tuple[str, ...] = ()

    def applied_turn(self, key: str) -> int | None:
        """The turn an idempotency key produced, or None if it was never applied."""
        return self.applied_keys.get(key)

    def advanced(self, *, cart: Mapping[str, int], key: str, note: str) -> SessionState:
        """The state after one more applied turn (same version: the store bumps it)."""
        turn = self.turn + 1
        keys = {k: t for k, t in self.applied_keys.items() if k != key}
        keys[key] = turn
        kept = dict(sorted(keys.items(), key=lambda kv: kv[1])[-APPLIED_KEYS_KEPT:])
        return SessionState(
            session_id=self.session_id,
            turn=turn,
            version=self.version,
            cart=dict(cart),
            applied_keys=kept,
            history=(*self.history, note)[-HISTORY_KEPT:],
        )

    def with_version(self, version: int) -> SessionState:
        """The same state at another checkpoint version."""
        return dataclasses.replace(self, version=version)

    def to_json(self) -> dict[str, Any]:
        """The state object of the protocol (``done`` event, ``GET /v1/sessions/{id}``)."""
        return {
            "session_id": self.session_id,
            "turn": self.turn,
            "cart": dict(sorted(self.cart.items())),
            "version": self.version,
        }


@dataclass(slots=True)
class DownstreamCounts:
    """What one turn cost downstream; filled in as the turn runs, reported in ``done``."""

    ddb_calls: int = 0
    ddb_rcu: float = 0.0
    ddb_wcu: float = 0.0
    llm_calls: int = 0
    llm_retries: int = 0
    llm_throttles: int = 0
    tokens_in: int = 0
    tokens_out: int = 0

    def to_json(self) -> dict[str, int | float]:
        """The ``downstream`` object of the ``done`` event."""
        return {
            "ddb_calls": self.ddb_calls,
            "ddb_rcu": self.ddb_rcu,
            "ddb_wcu": self.ddb_wcu,
            "llm_calls": self.llm_calls,
            "llm_retries": self.llm_retries,
            "llm_throttles": self.llm_throttles,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
        }
