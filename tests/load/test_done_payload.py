"""The done event: its usual shape read in one pass, with the same result as the full checks.

``parse_done`` takes a payload whose values need no repair (the usual one: every
count an int in range, the capacity units floats, the cart keyed by strings)
through ``_usual_done`` and everything else through ``_checked_done``. For any
payload the two must agree: same row, value for value and type for type, or the
same PayloadError.
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from loadlab.load.payloads import (
    _DOWNSTREAM_COUNTS,
    MAX_COUNT,
    AgentDone,
    PayloadError,
    _checked_done,
    _usual_done,
    parse_done,
)

USUAL: dict[str, Any] = {
    "state": {"session_id": "s-1", "turn": 3, "cart": {"P-0042": 2, "P-0007": 1}, "version": 3},
    "replayed": False,
    "downstream": {
        "ddb_calls": 2,
        "ddb_rcu": 0.5,
        "ddb_wcu": 1.0,
        "llm_calls": 1,
        "llm_retries": 0,
        "llm_throttles": 0,
        "tokens_in": 120,
        "tokens_out": 8,
    },
}

# Odd values: every kind the full checks repair or refuse, and the edges of the range.
_odd_count = st.one_of(
    st.sampled_from([MAX_COUNT, MAX_COUNT + 1, -1, True, False, None, 3.0, 2.5, "4", math.nan]),
    st.integers(min_value=-(2**70), max_value=2**70),
)
_odd_measure = st.sampled_from([0, 2, -0.0, -1.0, math.inf, math.nan, True, None, "0.5"])
_ODD = object()  # a key to drop


@st.composite
def _payloads(draw: st.DrawFn) -> dict[str, Any]:
    """A usual payload with up to three of its values made odd (or dropped)."""
    small = st.integers(min_value=0, max_value=50)
    down: dict[str, Any] = {k: draw(small) for k in _DOWNSTREAM_COUNTS}
    down["ddb_rcu"] = draw(st.floats(min_value=0.0, max_value=1e6))
    down["ddb_wcu"] = draw(st.floats(min_value=0.0, max_value=1e6))
    cart = draw(st.dictionaries(st.sampled_from(["P-1", "P-2", "a", "Z"]), small, max_size=3))
    if draw(st.integers(min_value=0, max_value=5)) == 0:
        cart[draw(st.sampled_from([7, None, ("P-9",)]))] = 1  # a key JSON never makes
    state: dict[str, Any] = {
        "session_id": "s-1",
        "turn": draw(small),
        "cart": cart,
        "version": draw(small),
    }
    payload: dict[str, Any] = {"state": state, "replayed": draw(st.booleans()), "downstream": down}
    places = [(down, k) for k in down] + [(state, k) for k in state] + [(cart, k) for k in cart]
    places += [(payload, k) for k in payload]
    for where, key in draw(st.lists(st.sampled_from(places), max_size=3)):
        if key in ("ddb_rcu", "ddb_wcu"):
            odd = draw(_odd_measure | st.just(_ODD))
        elif key in ("state", "downstream", "cart", "session_id", "replayed"):
            odd = draw(st.sampled_from([None, "x", [], 0, 7, True, _ODD]))
        else:
            odd = draw(_odd_count | st.just(_ODD))
        if odd is _ODD:
            where.pop(key, None)
        else:
            where[key] = odd
    return payload


def _outcome(parse: Any, payload: Any) -> tuple[str, Any]:
    try:
        done = parse(payload)
    except PayloadError as exc:
        return "error", str(exc)
    return "ok", _typed(done)


def _typed(value: Any) -> Any:
    """A row's values with their types, so 3 and 3.0 (or 1 and True) never compare equal."""
    if isinstance(value, tuple):
        return tuple(_typed(v) for v in value)
    if hasattr(value, "__slots__"):
        return (type(value).__name__, tuple(_typed(getattr(value, n)) for n in value.__slots__))
    if isinstance(value, float) and math.isnan(value):
        return ("float", "nan")
    return (type(value).__name__, repr(value))


@settings(max_examples=400, deadline=None)
@given(_payloads())
@example(USUAL)
def test_the_done_event_reads_the_same_through_either_path(payload: dict[str, Any]) -> None:
    assert _outcome(parse_done, payload) == _outcome(_checked_done, payload)


def test_the_usual_done_event_takes_the_one_pass_path() -> None:
    done = _usual_done(USUAL)
    assert isinstance(done, AgentDone)
    assert done.state is not None and done.state.cart == (("P-0007", 1), ("P-0042", 2))
    assert done.downstream.tokens_in == 120 and done.downstream.ddb_rcu == 0.5
    assert _typed(done) == _typed(_checked_done(USUAL))


@pytest.mark.parametrize(
    ("where", "key", "value"),
    [
        ("downstream", "llm_calls", True),  # a bool is not a count
        ("downstream", "tokens_out", 3.0),  # repaired to 3 by the full checks
        ("downstream", "ddb_rcu", 1),  # an int measure becomes a float there
        ("downstream", "ddb_wcu", math.nan),
        ("state", "turn", MAX_COUNT + 1),
        ("state", "version", None),
        ("state", "cart", {"P-1": -1}),
    ],
)
def test_a_value_out_of_the_usual_leaves_the_one_pass_path(
    where: str, key: str, value: Any
) -> None:
    payload = {**USUAL, where: {**USUAL[where], key: value}}
    assert _usual_done(payload) is None
    assert _outcome(parse_done, payload) == _outcome(_checked_done, payload)


def test_a_mapping_that_is_not_a_dict_reads_as_the_dict_does() -> None:
    proxy = MappingProxyType({**USUAL, "state": MappingProxyType(USUAL["state"])})
    assert _usual_done(proxy) is None
    assert _typed(parse_done(proxy)) == _typed(parse_done(USUAL))
