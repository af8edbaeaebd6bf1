"""What the agent tells us about itself and the session (docs/protocol.md).

The ``meta`` event says which instance served the turn and how (cold start,
where the session state came from); the ``done`` event carries the session
state the agent acknowledges (turn count, cart, checkpoint version) and what the
turn cost downstream. These are the facts the continuity oracle checks.

Parsing is lenient about what is optional and strict about what the oracle
relies on: a ``done`` without a well-formed ``state`` is malformed. Every number
the agent sends is checked where it is parsed: a count that is not a whole
number from 0 to 2**63 - 1, or a measure that is not a finite number (JSON's
``Infinity``/``NaN`` included), makes the event malformed, so no value that
cannot be recorded travels further than this module.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from loadlab.rows import row_builder

MAX_COUNT = 2**63 - 1
"""The largest count the run directory can hold (a signed 64-bit integer)."""


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


_NO_DOWNSTREAM = Downstream()


@dataclass(frozen=True, slots=True)
class AgentDone:
    """The ``done`` event (or an OpenAI stream's end): state is None without continuity."""

    state: AgentState | None = None
    replayed: bool = False
    downstream: Downstream = Downstream()


_JSON = json.JSONDecoder()

# Every turn's meta and done events build these frozen dataclasses, by
# loadlab.rows.row_builder, each from values in the order named here.
_meta = row_builder(
    AgentMeta, ("instance_id", "cold", "init_ms", "state_source", "intent", "replayed")
)
_state = row_builder(AgentState, ("session_id", "turn", "cart", "version"))
_downstream = row_builder(
    Downstream,
    (
        "ddb_calls",
        "ddb_rcu",
        "ddb_wcu",
        "llm_calls",
        "llm_retries",
        "llm_throttles",
        "tokens_in",
        "tokens_out",
    ),
)
_done = row_builder(AgentDone, ("state", "replayed", "downstream"))


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
    # Every turn's meta event: the values taken without a call each (as _opt would).
    get = obj.get
    instance_id, cold, source, intent = map(get, ("instance_id", "cold", "state_source", "intent"))
    return _meta(
        (
            instance_id if isinstance(instance_id, str) else None,
            cold if isinstance(cold, bool) else None,
            _opt_number(obj, "init_ms"),
            source if isinstance(source, str) else None,
            intent if isinstance(intent, str) else None,
            get("replayed") is True,
        )
    )


def parse_done(obj: Mapping[str, Any]) -> AgentDone:
    """Build :class:`AgentDone` from a ``done`` payload; ``state`` must be well formed."""
    done = _usual_done(obj)
    return done if done is not None else _checked_done(obj)


# What a turn's done event usually holds: every count an int of 0..MAX_COUNT, the
# capacity units finite floats >= 0, the cart's keys strings. Those values need no
# repair and make no error, so they are checked a whole group at a time (``map``,
# ``min``, ``max``: C calls) instead of value by value; anything else (a missing
# field, a null, 3.0 for 3, a bool, a plain Mapping) gives None and goes through
# _checked_done, whose result (or error) is the same for the usual payloads
# (tests/load/test_done_payload.py).
_INT = {int}
_STR = {str}
_DOWNSTREAM_COUNTS = (
    "ddb_calls",
    "llm_calls",
    "llm_retries",
    "llm_throttles",
    "tokens_in",
    "tokens_out",
)


def _usual_done(obj: Mapping[str, Any]) -> AgentDone | None:
    if type(obj) is not dict:
        return None
    raw_state = obj.get("state")
    raw_down = obj.get("downstream")
    if type(raw_state) is not dict or type(raw_down) is not dict:
        return None
    raw_cart = raw_state.get("cart", {})
    if type(raw_cart) is not dict:
        return None
    turn = raw_state.get("turn")
    version = raw_state.get("version")
    session_id = raw_state.get("session_id")
    get = raw_down.get
    calls, llm, retries, throttles, t_in, t_out = map(get, _DOWNSTREAM_COUNTS)
    rcu, wcu = get("ddb_rcu"), get("ddb_wcu")
    counts = (turn, version, calls, llm, retries, throttles, t_in, t_out, *raw_cart.values())
    if (
        set(map(type, counts)) != _INT
        or min(counts) < 0
        or max(counts) > MAX_COUNT
        or rcu.__class__ is not float
        or wcu.__class__ is not float
        or not (0.0 <= rcu < math.inf and 0.0 <= wcu < math.inf)
        or (raw_cart and not set(map(type, raw_cart)) <= _STR)
    ):
        return None
    state = _state(
        (
            session_id if isinstance(session_id, str) else None,
            turn,
            tuple(sorted(raw_cart.items())),
            version,
        )
    )
    downstream = _downstream((calls, rcu, wcu, llm, retries, throttles, t_in, t_out))
    return _done((state, obj.get("replayed") is True, downstream))


def _checked_done(obj: Mapping[str, Any]) -> AgentDone:
    """parse_done for any payload: each value checked, repaired where allowed, or refused."""
    raw_state = obj.get("state")
    if not isinstance(raw_state, Mapping):
        raise PayloadError("done event has no 'state' object")
    turn = raw_state.get("turn")
    if not _is_count(turn):
        raise PayloadError(f"done.state.turn is not an integer from 0 to {MAX_COUNT}: {turn!r:.80}")
    raw_cart = raw_state.get("cart", {})
    if not isinstance(raw_cart, Mapping):
        raise PayloadError(f"done.state.cart is not an object: {raw_cart!r}")
    cart: list[tuple[str, int]] = []
    for item, units in raw_cart.items():
        if not _is_count(units):
            raise PayloadError(
                f"done.state.cart[{item!r:.80}] is not an integer from 0 to {MAX_COUNT}: "
                f"{units!r:.80}"
            )
        cart.append((str(item), units))
    version = raw_state.get("version")
    if version is not None and not _is_count(version):
        raise PayloadError(
            f"done.state.version is not an integer from 0 to {MAX_COUNT}: {version!r:.80}"
        )
    state = _state((_opt(raw_state, "session_id", str), turn, tuple(sorted(cart)), version))
    raw_down = obj.get("downstream")
    downstream = _NO_DOWNSTREAM
    if isinstance(raw_down, Mapping):
        downstream = _downstream(
            (
                _count(raw_down, "ddb_calls"),
                _measure(raw_down, "ddb_rcu"),
                _measure(raw_down, "ddb_wcu"),
                _count(raw_down, "llm_calls"),
                _count(raw_down, "llm_retries"),
                _count(raw_down, "llm_throttles"),
                _count(raw_down, "tokens_in"),
                _count(raw_down, "tokens_out"),
            )
        )
    elif raw_down is not None:
        raise PayloadError(f"done.downstream is not an object: {raw_down!r:.80}")
    return _done((state, obj.get("replayed") is True, downstream))


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
    """An optional finite number: None when absent or null, malformed otherwise."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(f"{key!r} is not a number: {value!r:.80}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise PayloadError(f"{key!r} is not a finite number: {value!r:.80}")
    return number


def _measure(obj: Mapping[str, Any], key: str) -> float:
    """A downstream measure (capacity units): a finite number >= 0, 0 when absent."""
    value = obj.get(key)
    if value.__class__ is float and 0.0 <= value < math.inf:
        return value  # the usual value, as the checks below would take it
    number = _opt_number(obj, key)
    if number is None:
        return 0.0
    if number < 0:
        raise PayloadError(f"{key!r} is negative: {number!r}")
    return number


def _is_count(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and 0 <= value <= MAX_COUNT


def _count(obj: Mapping[str, Any], key: str) -> int:
    """A downstream count: a whole number 0..MAX_COUNT (``3.0`` is 3), 0 when absent."""
    value = obj.get(key)
    if value.__class__ is int and 0 <= value <= MAX_COUNT:
        return value  # the usual value, as the checks below would take it
    if value is None:
        return 0
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if not _is_count(value):
        raise PayloadError(f"{key!r} is not an integer from 0 to {MAX_COUNT}: {value!r:.80}")
    count: int = value
    return count
