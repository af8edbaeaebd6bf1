"""Cheap, deterministic intent detection: keywords and the SKU pattern, no model.

The first rule that matches wins (words are matched whole, case-insensitively)::

    remove_from_cart   remove, delete, drop, "take out"
    add_to_cart        add, put; or buy/purchase/"i'll take" with a SKU
    checkout_question  checkout, "check out", pay, payment, shipping, coupon, discount,
                       promo, refund, return(s), total
    order_status       order(s), track, tracking, delivery, delivered, shipped, arrive
    compare            compare, comparison, versus, vs, difference, better; or two SKUs
    search             search, find, "looking for", "do you have", need; or one SKU
    browse             anything else ("show me", "what's new", a category name)

Load users write their messages so that these rules give the intent they plan.
"""

from __future__ import annotations

import re
from typing import Literal, get_args

from loadlab.embedded.agent.catalog import extract_skus

Intent = Literal[
    "browse",
    "search",
    "compare",
    "add_to_cart",
    "remove_from_cart",
    "order_status",
    "checkout_question",
]
INTENTS: tuple[str, ...] = get_args(Intent)
SIDE_EFFECT_INTENTS: frozenset[str] = frozenset({"add_to_cart", "remove_from_cart"})


def _words(*phrases: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(phrases) + r")\b", re.IGNORECASE)


_REMOVE = _words("remove", "delete", "drop", r"take\s+out")
_ADD = _words("add", "put")
_BUY = _words("buy", "purchase", r"i'?ll\s+take")
_CHECKOUT = _words(
    "checkout", r"check\s+out", "pay", "payment", "shipping", "coupon", "discount", "promo",
    "refund", "returns?", "total",
)  # fmt: skip
_ORDER = _words("orders?", "track", "tracking", "delivery", "delivered", "shipped", "arrive")
_COMPARE = _words("compare", "comparison", "versus", "vs", "difference", "better")
_SEARCH = _words("search", "find", r"looking\s+for", r"do\s+you\s+have", "need")


def detect_intent(message: str) -> Intent:
    """The intent of one shopper message (see the module docstring for the rules)."""
    skus = extract_skus(message)
    if _REMOVE.search(message):
        return "remove_from_cart"
    if _ADD.search(message) or (skus and _BUY.search(message)):
        return "add_to_cart"
    if _CHECKOUT.search(message):
        return "checkout_question"
    if _ORDER.search(message):
        return "order_status"
    if _COMPARE.search(message) or len(skus) >= 2:
        return "compare"
    if _SEARCH.search(message) or skus:
        return "search"
    return "browse"
