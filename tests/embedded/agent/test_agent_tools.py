"""The tools' cart rules, which load users mirror to predict a session's cart."""

from __future__ import annotations

from loadlab.embedded.agent.catalog import Catalog
from loadlab.embedded.agent.state import SessionState
from loadlab.embedded.agent.tools import replay_summary, run_tool

CATALOG = Catalog.load()


def _state(cart: dict[str, int]) -> SessionState:
    return SessionState(session_id="s-1", turn=1, version=1, cart=cart)


def test_add_adds_one_of_each_distinct_known_sku() -> None:
    result = run_tool(
        "add_to_cart", "add P-0001, P-0001 and P-0999", state=_state({"P-0001": 1}), catalog=CATALOG
    )
    assert result.cart == {"P-0001": 2}
    assert result.summary["added"] == ["P-0001"] and result.summary["unknown_skus"] == ["P-0999"]


def test_remove_takes_one_and_drops_empty_lines() -> None:
    state = _state({"P-0001": 2, "P-0002": 1})
    result = run_tool(
        "remove_from_cart", "remove P-0001 P-0002 P-0003", state=state, catalog=CATALOG
    )
    assert result.cart == {"P-0001": 1}
    assert result.summary["not_in_cart"] == ["P-0003"]
    assert state.cart == {"P-0001": 2, "P-0002": 1}  # the input state is not changed


def test_read_only_tools_leave_the_cart_alone() -> None:
    state = _state({"P-0005": 1})
    for intent, message in [
        ("browse", "show me toys"),
        ("search", "find a kettle"),
        ("compare", "compare P-0001 and P-0002"),
        ("order_status", "where is my order"),
        ("checkout_question", "what's my total"),
    ]:
        result = run_tool(intent, message, state=state, catalog=CATALOG)
        assert result.cart == {"P-0005": 1}, intent
        assert result.summary["tool"] == intent


def test_checkout_charges_shipping_below_the_free_threshold() -> None:
    cheap = min(CATALOG.products, key=lambda p: p.price)
    summary = run_tool(
        "checkout_question", "total?", state=_state({cheap.sku: 1}), catalog=CATALOG
    ).summary
    assert summary["subtotal"] == cheap.price and summary["shipping"] > 0


def test_a_replay_describes_the_stored_state_only() -> None:
    result = replay_summary("add_to_cart", state=_state({"P-0001": 1}), applied_turn=1)
    assert result.cart == {"P-0001": 1} and result.summary["already_applied_at_turn"] == 1
