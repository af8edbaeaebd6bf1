"""A shopper's session, planned in advance from a seed.

:func:`plan_session` turns a scenario and a seed into a :class:`SessionSpec`: the
persona, every message the shopper will send, the think time before each, and
for cart turns the SKU and the change to the cart the shopper expects. The same
seed always gives the same session, so a run can be replayed and a verdict
explained turn by turn.

Messages use the catalog's SKUs (``P-0001`` .. ``P-0200``) and the keywords the
reference agent's intent detector recognises. Each cart turn adds one unit of a
SKU not yet in the cart, or removes one the script added earlier, so the cart
the shopper expects after every turn is well defined whatever quantity
semantics the agent uses.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from loadlab.rows import row_builder
from loadlab.scenario.model import Intent, Persona, Scenario, ThinkTime

T = TypeVar("T")

CATALOG_SIZE = 200
"""The reference agent's catalog holds SKUs P-0001 .. P-0200."""


def sku(number: int) -> str:
    """Return the catalog SKU for a product number (1-based)."""
    return f"P-{number:04d}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Turn:
    """One logical turn: what the shopper says, after how long, and what it expects.

    ``index`` is the 1-based turn number sent to the agent. ``think_time_s`` is
    the unscaled pause *before* this turn (0 for the first). ``cart_delta`` is
    the change in units of ``sku`` the shopper expects (+1 add, -1 remove, 0
    otherwise).
    """

    index: int
    intent: Intent
    message: str
    think_time_s: float
    sku: str | None = None
    cart_delta: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionSpec:
    """A whole planned session: who the shopper is and every turn it will play."""

    session_id: str
    persona: str
    seed: int
    turns: tuple[Turn, ...]

    def expected_cart(self, through_index: int) -> dict[str, int]:
        """Return the cart the shopper expects after turn ``through_index`` (1-based)."""
        return expected_cart(self.turns[:through_index])


def expected_cart(turns: Sequence[Turn]) -> dict[str, int]:
    """Return the cart that applying ``turns`` in order should produce (sku -> units)."""
    cart: dict[str, int] = {}
    for turn in turns:
        if turn.sku is None or turn.cart_delta == 0:
            continue
        units = cart.get(turn.sku, 0) + turn.cart_delta
        if units > 0:
            cart[turn.sku] = units
        else:
            cart.pop(turn.sku, None)
    return cart


_BROWSE = (
    "Show me what's on sale today",
    "Browse the {category} deals",
    "Show me your {category} products",
    "Show me the best sellers in {category}",
)
_SEARCH = (
    "Search for {term}",
    "Find me {term} under $50",
    "Can you find {term}?",
    "Search for {sku}",
)
_COMPARE = (
    "Compare {sku} and {sku2}",
    "Can you compare {sku} with {sku2}?",
    "Compare {sku}, {sku2} for me",
)
_ADD = (
    "Add {sku} to my cart",
    "Please add {sku} to my cart",
    "Put {sku} in my cart",
)
_REMOVE = (
    "Remove {sku} from my cart",
    "Please remove {sku} from my cart",
)
_ORDER = (
    "Where is my order?",
    "What's my order status?",
    "Can you check my order status?",
)
_CHECKOUT = (
    "What are the shipping options?",
    "What is your return policy?",
    "How does checkout work?",
    "How long does shipping take?",
)
# The reference agent's catalog categories and product nouns, so that browsing
# and searching find something (any agent still gets well-formed requests).
_CATEGORIES = (
    "headphones",
    "laptops",
    "phones",
    "cameras",
    "kitchen",
    "shoes",
    "jackets",
    "books",
    "toys",
    "garden",
)
_TEMPLATES: dict[str, tuple[str, ...]] = {
    "browse": _BROWSE,
    "search": _SEARCH,
    "compare": _COMPARE,
    "order_status": _ORDER,
    "checkout_question": _CHECKOUT,
}
_TERMS = (
    "wireless headphones",
    "running shoes",
    "a coffee maker",
    "a rain jacket",
    "a board game",
    "a travel guide",
    "an action cam",
)


def plan_session(scenario: Scenario, seed: int, *, session_id: str | None = None) -> SessionSpec:
    """Plan one shopper's session deterministically from ``seed``.

    ``session_id`` defaults to one derived from the scenario name and the seed;
    the load layer passes a run-unique one so checkpoints of earlier runs are
    never picked up.
    """
    rng = random.Random(seed)
    model = scenario.session
    persona = _pick_persona(rng, model.personas)
    count = model.turns.min + _below(rng, model.turns.max - model.turns.min + 1)
    cart: list[str] = []
    turns: list[Turn] = []
    for index in range(1, count + 1):
        intent = _pick_intent(rng, persona, cart_has_items=bool(cart))
        think = 0.0 if index == 1 else _think_time(rng, model.think_time)
        turns.append(_make_turn(rng, index, intent, think, cart))
    return SessionSpec(
        session_id=session_id or f"{scenario.name}-{seed}",
        persona=persona.name,
        seed=seed,
        turns=tuple(turns),
    )


# A session is planned for every shopper of a run (thousands a second at a flash
# sale's peak), and ``random.Random``'s ``choices``, ``choice`` and ``randint``
# each cost two or three Python calls per draw: more than the rest of planning.
# The draws below take the same values from the generator in the same order as
# CPython 3.11's methods (a seed plans the same session as before) in one call
# each: ``_below`` is its ``_randbelow`` (rejection sampling on ``getrandbits``),
# ``_weighted`` its ``choices(..., cum_weights=..., k=1)`` (bisect on
# ``random() * total``). Being loadlab's own, they also keep a seed's session the
# same on a Python whose ``random`` draws differently.
def _below(rng: random.Random, n: int) -> int:
    """A uniform integer in ``[0, n)``, ``n >= 1``."""
    k = n.bit_length()
    r = rng.getrandbits(k)
    while r >= n:
        r = rng.getrandbits(k)
    return r


def _pick(rng: random.Random, options: Sequence[T]) -> T:
    return options[_below(rng, len(options))]


@functools.lru_cache(maxsize=64)
def _persona_table(personas: tuple[Persona, ...]) -> tuple[list[Persona], list[float], float]:
    cumulative = list(itertools.accumulate(p.weight for p in personas))
    return list(personas), cumulative, cumulative[-1] + 0.0


@functools.lru_cache(maxsize=256)
def _intent_table(persona: Persona) -> tuple[list[Intent], list[float], float]:
    cumulative = list(itertools.accumulate(w for _, w in persona.intents))
    return [i for i, _ in persona.intents], cumulative, cumulative[-1] + 0.0


def _weighted(rng: random.Random, options: list[T], cumulative: list[float], total: float) -> T:
    return options[bisect.bisect_right(cumulative, rng.random() * total, 0, len(options) - 1)]


def _pick_persona(rng: random.Random, personas: Sequence[Persona]) -> Persona:
    return _weighted(rng, *_persona_table(tuple(personas)))


def _pick_intent(rng: random.Random, persona: Persona, *, cart_has_items: bool) -> Intent:
    # Removing needs something the script itself added; with an empty cart a
    # remove becomes an add, which keeps the persona's appetite for cart turns.
    intent = _weighted(rng, *_intent_table(persona))
    if intent == "remove_from_cart" and not cart_has_items:
        return "add_to_cart"
    return intent


def _think_time(rng: random.Random, think: ThinkTime) -> float:
    if think.distribution == "constant":
        return think.center_s
    if think.distribution == "uniform":
        return rng.uniform(think.min_s, think.max_s)
    center = think.center_s
    if center <= 0:
        return think.min_s
    value = rng.lognormvariate(math.log(center), think.sigma)
    return min(max(value, think.min_s), think.max_s)


# Thousands of turns are planned a second at a flash sale's peak: built by
# loadlab.rows.row_builder, values in this order.
_turn = row_builder(Turn, ("index", "intent", "message", "think_time_s", "sku", "cart_delta"))


def _random_sku(rng: random.Random, avoid: Sequence[str] = ()) -> str:
    # At most 10 cart items in a scenario's turns, so this finds one quickly;
    # the bound keeps it finite even if a catalog were nearly exhausted.
    for _ in range(1000):
        candidate = sku(1 + _below(rng, CATALOG_SIZE))
        if candidate not in avoid:
            return candidate
    return next(sku(n) for n in range(1, CATALOG_SIZE + 1) if sku(n) not in avoid)


def _make_turn(
    rng: random.Random, index: int, intent: Intent, think: float, cart: list[str]
) -> Turn:
    think = round(think, 3)
    if intent == "add_to_cart":
        item = _random_sku(rng, avoid=cart)
        cart.append(item)
        message = _pick(rng, _ADD).format(sku=item)
        return _turn((index, intent, message, think, item, 1))
    if intent == "remove_from_cart":
        item = _pick(rng, cart)
        cart.remove(item)
        message = _pick(rng, _REMOVE).format(sku=item)
        return _turn((index, intent, message, think, item, -1))
    first = _random_sku(rng)
    second = _random_sku(rng, avoid=(first,))
    category = _pick(rng, _CATEGORIES)
    term = _pick(rng, _TERMS)
    template = _pick(rng, _TEMPLATES[intent])
    message = template.format(sku=first, sku2=second, category=category, term=term)
    return _turn((index, intent, message, think, None, 0))
