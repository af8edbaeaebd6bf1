"""The session ledger: each of the five verdicts, and the evidence behind it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadlab.load.ledger import SessionLedger
from loadlab.load.payloads import AgentState
from loadlab.scenario.script import Turn, expected_cart

BROWSE = Turn(index=1, intent="browse", message="Show me shoes", think_time_s=0.0)
ADD_A = Turn(
    index=2,
    intent="add_to_cart",
    message="Add P-0001 to my cart",
    think_time_s=1.0,
    sku="P-0001",
    cart_delta=1,
)
ADD_B = Turn(
    index=3,
    intent="add_to_cart",
    message="Add P-0002 to my cart",
    think_time_s=1.0,
    sku="P-0002",
    cart_delta=1,
)
REMOVE_A = Turn(
    index=4,
    intent="remove_from_cart",
    message="Remove P-0001 from my cart",
    think_time_s=1.0,
    sku="P-0001",
    cart_delta=-1,
)


def state(turn: int, cart: dict[str, int] | None = None, version: int | None = None) -> AgentState:
    return AgentState(
        session_id="s",
        turn=turn,
        cart=tuple(sorted((cart or {}).items())),
        version=turn if version is None else version,
    )


def play_clean(ledger: SessionLedger, upto: int = 4) -> None:
    """Complete turns 1..upto with exactly the expected state."""
    acks = [
        state(1),
        state(2, {"P-0001": 1}),
        state(3, {"P-0001": 1, "P-0002": 1}),
        state(4, {"P-0002": 1}),
    ]
    for i, turn in enumerate([BROWSE, ADD_A, ADD_B, REMOVE_A][:upto]):
        ledger.turn_completed(turn, t_end=100.0 + i, state=acks[i])


def test_clean() -> None:
    ledger = SessionLedger(session_id="s")
    play_clean(ledger)
    verdict = ledger.verdict()
    assert verdict.verdict == "clean"
    assert "no interruption" in verdict.reason
    assert verdict.turns_done == 4
    assert verdict.interrupted_turns == 0
    assert verdict.resume_latency_ms is None
    assert verdict.checkpoint_version == 4
    assert json.loads(verdict.cart_json) == {"P-0002": 1}
    assert ledger.expected_cart == {"P-0002": 1}


def test_resumed_after_an_interrupted_turn_with_state_intact() -> None:
    ledger = SessionLedger(session_id="s")
    play_clean(ledger, upto=1)
    ledger.attempt_failed(ADD_A, t_start=10.0, error_kind="reset")
    ledger.attempt_failed(ADD_A, t_start=10.8, error_kind="connect")
    check = ledger.turn_completed(ADD_A, t_end=12.5, state=state(2, {"P-0001": 1}))
    assert check.interrupted and check.violation is None
    assert check.resume_latency_ms == pytest.approx(2500.0)
    ledger.turn_completed(ADD_B, t_end=20.0, state=state(3, {"P-0001": 1, "P-0002": 1}))
    verdict = ledger.verdict()
    assert verdict.verdict == "resumed"
    assert "turn 2 interrupted (reset)" in verdict.reason
    assert verdict.resume_latency_ms == pytest.approx(2500.0)
    assert verdict.interrupted_turns == 1


def test_restarted_when_the_cart_is_lost_after_a_fault() -> None:
    ledger = SessionLedger(session_id="s")
    play_clean(ledger, upto=2)
    ledger.attempt_failed(ADD_B, t_start=10.0, error_kind="reset")
    check = ledger.turn_completed(ADD_B, t_end=11.0, state=state(1, {"P-0002": 1}))
    assert check.violation is not None
    verdict = ledger.verdict()
    assert verdict.verdict == "restarted"
    assert "turn 3" in verdict.reason
    assert "P-0001: 0 in cart, expected 1" in verdict.reason
    assert "agent reports 1 turns after turn 3" in verdict.reason


def test_restarted_without_any_interruption_when_state_vanishes_between_turns() -> None:
    # The pod holding the session died while the shopper was thinking.
    ledger = SessionLedger(session_id="s")
    play_clean(ledger, upto=2)
    ledger.turn_completed(ADD_B, t_end=11.0, state=state(1, {"P-0002": 1}, version=1))
    verdict = ledger.verdict()
    assert verdict.verdict == "restarted"
    assert "checkpoint version went back from 2 to 1" in verdict.reason


def test_restarted_when_a_removed_item_comes_back() -> None:
    ledger = SessionLedger(session_id="s")
    play_clean(ledger, upto=3)
    ledger.turn_completed(REMOVE_A, t_end=20.0, state=state(4, {"P-0001": 1, "P-0002": 1}))
    verdict = ledger.verdict()
    assert verdict.verdict == "restarted"
    assert "P-0001: back in cart after it was removed" in verdict.reason


def test_duplicated_when_a_retry_applies_the_side_effect_twice() -> None:
    ledger = SessionLedger(session_id="s")
    play_clean(ledger, upto=1)
    ledger.attempt_failed(ADD_A, t_start=10.0, error_kind="timeout")
    ledger.turn_completed(ADD_A, t_end=11.0, state=state(3, {"P-0001": 2}))
    verdict = ledger.verdict()
    assert verdict.verdict == "duplicated"
    assert "P-0001: 2 in cart, asked for 1" in verdict.reason
    assert "agent reports 3 turns after turn 2" in verdict.reason


def test_duplicated_when_only_the_turn_count_jumps() -> None:
    ledger = SessionLedger(session_id="s")
    ledger.attempt_failed(BROWSE, t_start=1.0, error_kind="reset")
    ledger.turn_completed(BROWSE, t_end=2.0, state=state(2))
    assert ledger.verdict().verdict == "duplicated"


def test_failed_when_retries_run_out() -> None:
    ledger = SessionLedger(session_id="s")
    play_clean(ledger, upto=1)
    for t in (10.0, 11.0, 12.0):
        ledger.attempt_failed(ADD_A, t_start=t, error_kind="connect")
    ledger.turn_abandoned(ADD_A, reason="connect after 3 attempt(s)")
    assert ledger.finished
    verdict = ledger.verdict()
    assert verdict.verdict == "failed"
    assert verdict.reason == "turn 2 (add_to_cart) failed: connect after 3 attempt(s)"
    assert verdict.turns_done == 1
    assert verdict.resume_latency_ms is None


def test_loss_outranks_a_later_failure() -> None:
    ledger = SessionLedger(session_id="s")
    play_clean(ledger, upto=2)
    ledger.turn_completed(ADD_B, t_end=11.0, state=state(3, {"P-0002": 1}))
    ledger.turn_abandoned(REMOVE_A, reason="auth")
    assert ledger.verdict().verdict == "restarted"


def test_stopped_while_retrying_is_failed() -> None:
    ledger = SessionLedger(session_id="s")
    play_clean(ledger, upto=1)
    ledger.attempt_failed(ADD_A, t_start=10.0, error_kind="reset")
    ledger.stopped()
    verdict = ledger.verdict()
    assert verdict.verdict == "failed"
    assert verdict.reason == "stopped: turn 2 interrupted (reset) and not resumed"


@pytest.mark.parametrize("interrupted", [False, True])
def test_stopped_between_turns_keeps_the_ledger_verdict(interrupted: bool) -> None:
    ledger = SessionLedger(session_id="s")
    if interrupted:
        ledger.attempt_failed(BROWSE, t_start=1.0, error_kind="reset")
    play_clean(ledger, upto=2)
    ledger.stopped()
    verdict = ledger.verdict()
    assert verdict.verdict == ("resumed" if interrupted else "clean")
    assert verdict.reason == "stopped"


def test_without_session_state_only_clean_or_failed() -> None:
    ledger = SessionLedger(session_id="s", tracks_state=False)
    ledger.attempt_failed(BROWSE, t_start=1.0, error_kind="reset")
    ledger.turn_completed(BROWSE, t_end=2.0, state=state(7, {"P-0009": 3}))
    verdict = ledger.verdict()
    assert verdict.verdict == "clean"
    assert "no session state" in verdict.reason
    assert verdict.resume_latency_ms == pytest.approx(1000.0)
    ledger.turn_abandoned(ADD_A, reason="throttled")
    assert ledger.verdict().verdict == "failed"


def test_a_double_add_then_a_remove_stays_duplicated_not_restarted() -> None:
    """A retried add applied twice leaves one unit after the remove: duplication, not loss."""
    ledger = SessionLedger(session_id="s")
    play_clean(ledger, upto=1)
    ledger.attempt_failed(ADD_A, t_start=10.0, error_kind="reset")
    ledger.turn_completed(ADD_A, t_end=11.0, state=state(2, {"P-0001": 2}))
    ledger.turn_completed(ADD_B, t_end=12.0, state=state(3, {"P-0001": 2, "P-0002": 1}))
    ledger.turn_completed(REMOVE_A, t_end=13.0, state=state(4, {"P-0001": 1, "P-0002": 1}))
    verdict = ledger.verdict()
    assert verdict.verdict == "duplicated", verdict.reason
    assert "P-0001: 1 in cart after an earlier double add" not in verdict.reason  # first cause
    assert "P-0001: 2 in cart, asked for 1" in verdict.reason


STEPS = st.lists(
    st.tuples(
        st.sampled_from([None, "P-0001", "P-0002", "P-0003"]),
        st.sampled_from([-2, -1, 0, 1, 2]),
    ),
    max_size=20,
)


@settings(max_examples=200, deadline=None)
@given(steps=STEPS)
def test_the_expected_cart_is_the_completed_turns_applied_in_order(
    steps: list[tuple[str | None, int]],
) -> None:
    # The ledger keeps its cart turn by turn; it must always be what
    # expected_cart() computes from every completed turn at once.
    ledger = SessionLedger(session_id="s")
    done: list[Turn] = []
    for index, (sku, delta) in enumerate(steps, start=1):
        turn = Turn(
            index=index, intent="add", message="m", think_time_s=0.0, sku=sku, cart_delta=delta
        )
        ledger.turn_completed(turn, t_end=float(index))
        done.append(turn)
        assert ledger.expected_cart == expected_cart(done)
    ledger.expected_cart["P-0001"] = 99  # a copy: what a caller does with it changes nothing
    assert ledger.expected_cart == expected_cart(done)


# An acknowledgement as the agent may send it: right, or off in its turn count,
# its cart (an item lost, doubled, come back) or its checkpoint version.
ACKS = st.lists(
    st.tuples(
        st.sampled_from([None, "P-0001", "P-0002"]),  # the turn's item
        st.sampled_from([-1, 0, 1]),  # its cart delta
        st.sampled_from([0, 0, 0, -1, 1]),  # turn count off by
        st.sampled_from([None, None, "P-0001", "P-0002"]),  # an item the agent has wrong
        st.sampled_from([0, -1, 1]),  # by so many units
        st.sampled_from([0, 0, -2, 1, None]),  # checkpoint version off by (None: no version)
    ),
    max_size=12,
)


def _with_item_by_item_checks(ledger: SessionLedger) -> SessionLedger:
    ledger._check = ledger._compare  # type: ignore[method-assign]
    return ledger


@settings(max_examples=300, deadline=None)
@given(acks=ACKS)
def test_the_quick_agreement_check_judges_as_the_item_by_item_one(
    acks: list[tuple[str | None, int, int, str | None, int, int | None]],
) -> None:
    quick = SessionLedger(session_id="s")
    full = _with_item_by_item_checks(SessionLedger(session_id="s"))
    done: list[Turn] = []
    for index, (sku, delta, turn_off, wrong, units_off, version_off) in enumerate(acks, start=1):
        turn = Turn(
            index=index, intent="add", message="m", think_time_s=0.0, sku=sku, cart_delta=delta
        )
        done.append(turn)
        cart = expected_cart(done)
        if wrong is not None:
            cart[wrong] = max(0, cart.get(wrong, 0) + units_off)
        ack = state(
            index + turn_off,
            {k: v for k, v in cart.items() if v},
            version=None if version_off is None else max(0, index + version_off),
        )
        checks = [
            ledger.turn_completed(turn, t_end=float(index), state=ack) for ledger in (quick, full)
        ]
        assert checks[0] == checks[1]
    assert quick.verdict() == full.verdict()
