"""The agent's tools: one per intent, over the catalog and the session's cart.

Only ``add_to_cart`` and ``remove_from_cart`` change anything (the cart); every
tool returns a small JSON summary that goes into the LLM prompt. Cart rules,
which load users mirror to predict a session's cart:

* ``add_to_cart`` adds 1 of each distinct catalog SKU named in the message;
* ``remove_from_cart`` takes 1 of each distinct SKU named that is in the cart
  (an item whose quantity reaches 0 leaves the cart);
* unknown SKUs are reported and ignored; stock never refuses an add.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from loadlab.embedded.agent.catalog import Catalog, extract_skus
from loadlab.embedded.agent.state import SessionState

ORDER_STATUSES = ("processing", "packed", "shipped", "out for delivery", "delivered")
FREE_SHIPPING_OVER = 50.0
SHIPPING_FEE = 4.99


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolResult:
    """What a tool did: the cart after it, and what the LLM is told about it."""

    cart: Mapping[str, int]
    summary: Mapping[str, Any] = field(default_factory=dict)


def _products(catalog: Catalog, skus: list[str]) -> list[dict[str, Any]]:
    return [p.to_json() for sku in skus if (p := catalog.get(sku)) is not None]


def _cart_total(catalog: Catalog, cart: Mapping[str, int]) -> float:
    return round(sum(p.price * qty for sku, qty in cart.items() if (p := catalog.get(sku))), 2)


def run_tool(intent: str, message: str, *, state: SessionState, catalog: Catalog) -> ToolResult:
    """Run the tool of ``intent`` for ``message`` against ``state`` (which is not changed)."""
    skus = list(extract_skus(message))
    cart = dict(state.cart)
    known = [s for s in skus if catalog.get(s) is not None]
    unknown = [s for s in skus if catalog.get(s) is None]
    summary: dict[str, Any] = {"tool": intent}
    if intent == "add_to_cart":
        for sku in known:
            cart[sku] = cart.get(sku, 0) + 1
        summary |= {"added": known, "unknown_skus": unknown}
        if not skus:
            summary["suggestions"] = _products(catalog, [p.sku for p in catalog.search(message)])
    elif intent == "remove_from_cart":
        removed = [s for s in known if s in cart]
        for sku in removed:
            cart[sku] -= 1
            if cart[sku] <= 0:
                del cart[sku]
        summary |= {"removed": removed, "not_in_cart": [s for s in skus if s not in removed]}
    elif intent == "compare":
        picked = known if len(known) >= 2 else [p.sku for p in catalog.search(message, limit=2)]
        summary["products"] = _products(catalog, picked)
    elif intent == "search":
        summary["results"] = [p.to_json() for p in catalog.search(message)]
    elif intent == "order_status":
        status = ORDER_STATUSES[zlib.crc32(state.session_id.encode()) % len(ORDER_STATUSES)]
        summary |= {"order_status": status, "items": sum(cart.values())}
    elif intent == "checkout_question":
        total = _cart_total(catalog, cart)
        shipping = 0.0 if total >= FREE_SHIPPING_OVER or not cart else SHIPPING_FEE
        summary |= {
            "subtotal": total,
            "shipping": shipping,
            "free_shipping_over": FREE_SHIPPING_OVER,
        }
    else:  # browse
        category = catalog.category_in(message)
        if category is None:
            summary["categories"] = list(catalog.categories)
        else:
            summary |= {
                "category": category,
                "products": [p.to_json() for p in catalog.in_category(category)],
            }
    summary["cart"] = dict(sorted(cart.items()))
    return ToolResult(cart=cart, summary=summary)


def replay_summary(intent: str, *, state: SessionState, applied_turn: int) -> ToolResult:
    """What the LLM is told when a request was already applied: the stored state only."""
    summary = {
        "tool": intent,
        "already_applied_at_turn": applied_turn,
        "cart": dict(sorted(state.cart.items())),
    }
    return ToolResult(cart=dict(state.cart), summary=summary)
