"""Helpers for the load tests: a manual clock and reference-protocol stream builders."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any


class ManualClock:
    """A clock that moves only when told to (stands in for time.perf_counter/time.time)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def sse(event: str, payload: Any) -> bytes:
    """One SSE event with a JSON payload."""
    return f"event: {event}\ndata: {json.dumps(payload)}\n\n".encode()


def meta(**fields: Any) -> bytes:
    base = {
        "instance_id": "pod-1",
        "cold": False,
        "init_ms": 0.0,
        "state_source": "memory",
        "intent": "browse",
        "replayed": False,
    }
    return sse("meta", {**base, **fields})


def token(text: str) -> bytes:
    return sse("token", {"text": text})


def done(turn: int, cart: dict[str, int] | None = None, version: int = 1, **extra: Any) -> bytes:
    payload = {
        "state": {"session_id": "s", "turn": turn, "cart": cart or {}, "version": version},
        "replayed": False,
        "downstream": {
            "ddb_calls": 3,
            "ddb_rcu": 0.5,
            "ddb_wcu": 2.0,
            "llm_calls": 1,
            "llm_retries": 0,
            "llm_throttles": 0,
            "tokens_in": 230,
            "tokens_out": 80,
        },
    }
    payload.update(extra)
    return sse("done", payload)


def timed(clock: ManualClock, items: list[tuple[float, bytes | BaseException]]) -> Iterator[Any]:
    """Yield each chunk after advancing ``clock`` by its delay: when it 'arrives'."""
    for delay, item in items:
        clock.advance(delay)
        yield item


SKU_RE = re.compile(r"P-\d{4}")


class AgentModel:
    """The reference agent's session logic (docs/protocol.md), with switchable breakage.

    ``idempotent=False`` re-applies a retried key; ``lose_state_on_cut`` forgets
    the session when a stream is cut (no checkpoint). Used behind an in-process
    transport and behind the aiohttp test server.
    """

    def __init__(self, *, idempotent: bool = True, lose_state_on_cut: bool = False) -> None:
        self.idempotent = idempotent
        self.lose_state_on_cut = lose_state_on_cut
        self.sessions: dict[str, dict[str, Any]] = {}

    def apply(self, session_id: str, key: str, message: str) -> tuple[dict[str, Any], bool, str]:
        """Apply one turn; return (state, replayed, intent)."""
        session = self.sessions.setdefault(
            session_id, {"turn": 0, "cart": {}, "version": 0, "keys": {}}
        )
        lower = message.lower()
        if "remove" in lower:
            intent = "remove_from_cart"
        elif "add" in lower or "put" in lower:
            intent = "add_to_cart"
        else:
            intent = "browse"
        if self.idempotent and key in session["keys"]:
            return self.state(session_id), True, intent
        skus = SKU_RE.findall(message)
        if intent == "add_to_cart" and skus:
            session["cart"][skus[0]] = session["cart"].get(skus[0], 0) + 1
        elif intent == "remove_from_cart" and skus:
            session["cart"].pop(skus[0], None)
        session["turn"] += 1
        session["version"] += 1
        session["keys"][key] = session["turn"]
        return self.state(session_id), False, intent

    def state(self, session_id: str) -> dict[str, Any]:
        session = self.sessions[session_id]
        return {
            "session_id": session_id,
            "turn": session["turn"],
            "cart": dict(session["cart"]),
            "version": session["version"],
        }

    def cut(self, session_id: str) -> None:
        if self.lose_state_on_cut:
            self.sessions.pop(session_id, None)

    def stream(self, session_id: str, key: str, message: str) -> tuple[list[bytes], list[bytes]]:
        """Apply a turn; return (chunks before the cut point, chunks after it)."""
        state, replayed, intent = self.apply(session_id, key, message)
        head = [meta(intent=intent, replayed=replayed), token("Sure, ")]
        tail = [
            token("done."),
            done(state["turn"], state["cart"], state["version"], replayed=replayed),
        ]
        return head, tail
