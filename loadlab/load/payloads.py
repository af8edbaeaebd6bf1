"""What the agent tells us about itself and the session (docs/protocol.md).

The ``meta`` event says which instance served the turn and how (cold start,
where the session state came from); the ``done`` event carries the session
state the agent acknowledges (turn count, cart, checkpoint version) and what the
turn cost downstream. These are the facts the continuity oracle checks.

Parsing is lenient about what is optional and strict about what the oracle
relies on: a ``done`` without a well-formed ``state`` is malformed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class PayloadError(ValueError):
    """An event payload does not have the shape the protocol describes."""


@dataclass(frozen=True, slots=True)
class AgentMeta:
    """The ``meta`` event: who served the turn and how."""

    instance_id: str | None = None
    cold: bool | None = None
    init_ms: float | None = None
    state_source: str | None = None
    intent: str | None = None
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class AgentState:
    """The session state the agent acknowledges after a turn."""

    session_id: str | None
    turn: int
    cart: tuple[tuple[str, int], ...]
    version: int | None

    def cart_dict(self) -> dict[str, int]:
        """The cart as a ``{sku: units}`` dict."""
        return dict(self.cart)


@dataclass(frozen=True, slots=True)
class Downstream:
    """What one turn cost the agent's dependencies (DynamoDB, LLM)."""

    ddb_calls: int = 0
    ddb_rcu: float = 0.0
    ddb_wcu: float = 0.0
    llm_calls: int = 0
    llm_retries: int = 0
    llm_throttles: int = 0
    tokens_in: int = 0
    tokens_out: int = 0


@dataclass(frozen=True, slots=True)
class AgentDone:
    """The ``done`` event (or an OpenAI stream's end): state is None without continuity."""

    state: AgentState | None = None
    replayed: bool = False
    downstream: Downstream = Downstream()


_JSON = json.JSONDecoder()


def load_json_object(data: str) -> dict[str, Any]:
    """Parse an event's data as a JSON object, or raise :class:`PayloadError`."""
    # Every event of every turn comes through here. raw_decode skips
    # json.loads' argument checks and whitespace scans; whatever it does not
    # take whole (surrounding whitespace, trailing data, an error) goes through
    # json.loads, so values and error messages are exactly json.loads'.
    try:
        value, end = _JSON.raw_decode(data)
    except ValueError:
        end = -1
    if end != len(data):
        try:
            value = json.loads(data)
        except ValueError as exc:
            raise PayloadError(f"event data is not JSON: {exc.args[0]}") from None
    if not isinstance(value, dict):
        raise PayloadError(f"event data is not a JSON object: {type(value).__name__}")
    return value


def parse_meta(obj: Mapping[str, Any]) -> AgentMeta:
    """Build :class:`AgentMeta` from a ``meta`` payload (missing fields are None)."""
    return AgentMeta(
        instance_id=_opt(obj, "instance_id", str),
        cold=_opt(obj, "cold", bool),
        init_ms=_opt_number(obj, "init_ms"),
        state_source=_opt(obj, "state_source", str),
        intent=_opt(obj, "intent", str),
        replayed=bool(_opt(obj, "replayed", bool) or False),
    )


def parse_done(obj: Mapping[str, Any]) -> AgentDone:
    """Build :class:`AgentDone` from a ``done`` payload; ``state`` must be well formed."""
    raw_state = obj.get("state")
    if not isinstance(raw_state, Mapping):
        raise PayloadError("done event has no 'state' object")
    turn = raw_state.get("turn")
    if isinstance(turn, bool) or not isinstance(turn, int):
        raise PayloadError(f"done.state.turn is not an integer: {turn!r}")
    raw_cart = raw_state.get("cart", {})
    if not isinstance(raw_cart, Mapping):
        raise PayloadError(f"done.state.cart is not an object: {raw_cart!r}")
    cart: list[tuple[str, int]] = []
    for item, units in raw_cart.items():
        if isinstance(units, bool) or not isinstance(units, int):
            raise PayloadError(f"done.state.cart[{item!r}] is not an integer: {units!r}")
        cart.append((str(item), units))
    version = raw_state.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise PayloadError(f"done.state.version is not an integer: {version!r}")
    state = AgentState(
        session_id=_opt(raw_state, "session_id", str),
        turn=turn,
        cart=tuple(sorted(cart)),
        version=version,
    )
    raw_down = obj.get("downstream")
    downstream = Downstream()
    if isinstance(raw_down, Mapping):
        downstream = Downstream(
            ddb_calls=_count(raw_down, "ddb_calls"),
            ddb_rcu=_opt_number(raw_down, "ddb_rcu") or 0.0,
            ddb_wcu=_opt_number(raw_down, "ddb_wcu") or 0.0,
            llm_calls=_count(raw_down, "llm_calls"),
            llm_retries=_count(raw_down, "llm_retries"),
            llm_throttles=_count(raw_down, "llm_throttles"),
            tokens_in=_count(raw_down, "tokens_in"),
            tokens_out=_count(raw_down, "tokens_out"),
        )
    return AgentDone(
        state=state,
        replayed=bool(_opt(obj, "replayed", bool) or False),
        downstream=downstream,
    )


@dataclass(frozen=True, slots=True)
class ErrorPayload:
    """An error the agent reported: its own ``kind`` and a human message."""

    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}" if self.message else self.kind


def parse_error_payload(obj: Mapping[str, Any]) -> ErrorPayload:
    """Read ``{"error": {"kind", "message"}}`` (or the bare inner object, or OpenAI's
    ``{"error": {"type", "message"}}``)."""
    inner = obj.get("error", obj)
    if not isinstance(inner, Mapping):
        return ErrorPayload(kind="error", message=str(inner)[:500])
    kind = inner.get("kind") or inner.get("type") or inner.get("code") or "error"
    return ErrorPayload(kind=str(kind)[:100], message=str(inner.get("message", ""))[:500])


def _opt(obj: Mapping[str, Any], key: str, kind: type[Any]) -> Any:
    value = obj.get(key)
    return value if isinstance(value, kind) else None


def _opt_number(obj: Mapping[str, Any], key: str) -> float | None:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _count(obj: Mapping[str, Any], key: str) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return int(value)
