"""Intent detection: the keyword and SKU rules, in their order of precedence."""

from __future__ import annotations

import pytest

from loadlab.embedded.agent.intent import INTENTS, detect_intent


@pytest.mark.parametrize(
    ("message", "intent"),
    [
        ("Show me what's new", "browse"),
        ("Any good jackets?", "browse"),
        ("hello", "browse"),
        ("I'm looking for running shoes", "search"),
        ("Do you have a kettle under $50?", "search"),
        ("Find me headphones", "search"),
        ("Tell me about P-0042", "search"),
        ("Compare P-0001 and P-0011", "compare"),
        ("P-0001 or P-0011?", "compare"),
        ("Which is better for travel, a notebook or an ultrabook?", "compare"),
        ("Add P-0042 to my cart", "add_to_cart"),
        ("please put p-0007 in the basket", "add_to_cart"),
        ("I'll take P-0003", "add_to_cart"),
        ("buy P-0100", "add_to_cart"),
        ("Remove P-0042 from my cart", "remove_from_cart"),
        ("Take out the kettle", "remove_from_cart"),
        ("Add nothing, actually remove P-0042", "remove_from_cart"),
        ("Where is my order?", "order_status"),
        ("Has it shipped yet? I want to track it", "order_status"),
        ("When will my delivery arrive?", "order_status"),
        ("How much is shipping at checkout?", "checkout_question"),
        ("Can I pay with a coupon?", "checkout_question"),
        ("What is the return policy for my order?", "checkout_question"),
        ("Do you have a discount code?", "checkout_question"),
        ("I want to buy something nice", "browse"),  # buy without a SKU adds nothing
    ],
)
def test_detect_intent(message: str, intent: str) -> None:
    assert detect_intent(message) == intent


def test_every_intent_is_reachable() -> None:
    samples = [
        "hi",
        "find a lens",
        "compare P-0001 P-0002",
        "add P-0001",
        "remove P-0001",
        "track my order",
        "checkout",
    ]
    assert sorted(detect_intent(m) for m in samples) == sorted(INTENTS)


def test_words_match_whole_not_inside_other_words() -> None:
    assert detect_intent("the padded bag") == "browse"  # "add" inside "padded"
    assert detect_intent("a border collie toy") == "browse"  # "order" inside "border"
