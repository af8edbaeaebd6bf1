"""Session planning: deterministic from the seed, and always a well-defined cart."""

from __future__ import annotations

import hashlib
import re

import pytest

from loadlab.scenario import expected_cart, parse_scenario, plan_session
from loadlab.scenario.model import INTENTS

SKU = re.compile(r"P-(\d{4})")

# The keywords of docs/protocol.md's intents, as the reference agent detects them.
KEYWORDS = {
    "browse": ("browse", "show me"),
    "search": ("search", "find"),
    "compare": ("compare",),
    "add_to_cart": ("add", "put"),
    "remove_from_cart": ("remove",),
    "order_status": ("where is my order", "order status"),
    "checkout_question": ("checkout", "shipping", "return policy"),
}


def _scenario(**session: object) -> object:
    return parse_scenario({"name": "plan", "seed": 5, "session": session})


def test_same_seed_same_session() -> None:
    scenario = _scenario()
    assert plan_session(scenario, 42) == plan_session(scenario, 42)


def test_different_seeds_differ() -> None:
    scenario = _scenario()
    plans = {plan_session(scenario, seed).turns for seed in range(20)}
    assert len(plans) == 20


def test_turn_count_and_think_time_within_bounds() -> None:
    scenario = _scenario(
        turns={"min": 3, "max": 5}, think_time={"distribution": "uniform", "min_s": 2, "max_s": 4}
    )
    counts = set()
    for seed in range(200):
        spec = plan_session(scenario, seed)
        counts.add(len(spec.turns))
        assert [t.index for t in spec.turns] == list(range(1, len(spec.turns) + 1))
        assert spec.turns[0].think_time_s == 0.0
        assert all(2 <= t.think_time_s <= 4 for t in spec.turns[1:])
    assert counts == {3, 4, 5}


def test_lognormal_think_time_is_clamped() -> None:
    scenario = _scenario(
        think_time={"distribution": "lognormal", "median_s": 8, "sigma": 2, "min_s": 5, "max_s": 15}
    )
    times = [t.think_time_s for s in range(100) for t in plan_session(scenario, s).turns[1:]]
    assert min(times) == 5 and max(times) == 15
    assert any(5 < t < 15 for t in times)


def test_messages_carry_catalog_skus_and_intent_keywords() -> None:
    scenario = _scenario()
    seen = set()
    for seed in range(100):
        for turn in plan_session(scenario, seed).turns:
            seen.add(turn.intent)
            text = turn.message.lower()
            assert any(k in text for k in KEYWORDS[turn.intent]), turn
            for number in SKU.findall(turn.message):
                assert 1 <= int(number) <= 200
            others = [i for i in INTENTS if i != turn.intent and i != "browse"]
            # No message carries the unambiguous keyword of a different intent.
            assert not any(k in text for i in others for k in KEYWORDS[i][:1]), turn
    assert seen == set(INTENTS)


def test_cart_turns_name_their_sku_and_remove_only_what_was_added() -> None:
    scenario = _scenario(
        personas=[{"name": "churner", "intents": {"add_to_cart": 1, "remove_from_cart": 3}}],
        turns={"min": 8, "max": 10},
    )
    removes = 0
    for seed in range(100):
        cart: dict[str, int] = {}
        for turn in plan_session(scenario, seed).turns:
            assert turn.sku is not None and turn.sku in turn.message
            if turn.intent == "add_to_cart":
                assert turn.cart_delta == 1 and turn.sku not in cart
                cart[turn.sku] = 1
            else:
                removes += 1
                assert turn.cart_delta == -1 and turn.sku in cart
                del cart[turn.sku]
    assert removes > 100


def test_expected_cart_follows_the_script() -> None:
    scenario = _scenario(personas=[{"name": "buyer", "intents": {"add_to_cart": 1}}])
    spec = plan_session(scenario, 3)
    skus = [t.sku for t in spec.turns]
    assert spec.expected_cart(2) == {skus[0]: 1, skus[1]: 1}
    assert expected_cart(spec.turns) == dict.fromkeys(skus, 1)


def test_persona_weights_pick_personas() -> None:
    scenario = _scenario(personas=[{"name": "rare", "weight": 1}, {"name": "common", "weight": 9}])
    picks = [plan_session(scenario, s).persona for s in range(300)]
    assert 0 < picks.count("rare") < picks.count("common")


@pytest.mark.parametrize("session_id", [None, "run1-local-000001"])
def test_session_id(session_id: str | None) -> None:
    spec = plan_session(_scenario(), 8, session_id=session_id)
    assert spec.session_id == (session_id or "plan-8")
    assert spec.seed == 8


def test_reference_agent_detects_every_planned_intent() -> None:
    # The contract with the reference agent: its detector reads what the script meant.
    from loadlab.embedded.agent.intent import detect_intent

    scenario = _scenario()
    turns = [t for seed in range(300) for t in plan_session(scenario, seed).turns]
    assert {t.intent for t in turns} == set(INTENTS)
    wrong = [(t.intent, t.message) for t in turns if detect_intent(t.message) != t.intent]
    assert wrong == []


def test_a_seed_plans_the_same_session_as_before() -> None:
    # The planner draws from the generator itself (loadlab.scenario.script._below):
    # these sessions are the ones random.Random's choices/choice/randint planned.
    digest = hashlib.sha256()
    for session in (
        {},
        {
            "turns": {"min": 1, "max": 12},
            "think_time": {"distribution": "uniform", "min_s": 1, "max_s": 9},
        },
        {"think_time": {"distribution": "lognormal", "median_s": 4}},
    ):
        scenario = parse_scenario({"name": "plan", "seed": 5, "session": session})
        for seed in range(300):
            digest.update(repr(plan_session(scenario, seed)).encode())
    assert digest.hexdigest() == (
        "dcbf35946b956693badb0cb697dd520234bb0a852a5be67c5b76656b7e866014"
    )
