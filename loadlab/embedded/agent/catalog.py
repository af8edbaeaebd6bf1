"""The product catalog the reference agent ships with.

``catalog.json`` beside this module holds 200 products (``P-0001`` … ``P-0200``,
20 in each of 10 categories). It was produced once by :func:`generate_catalog`
with :data:`CATALOG_SEED` and committed, so load users and the agent agree on
every SKU without sharing code; a test checks that the file still equals the
generator's output. Regenerate it with::

    python -m loadlab.embedded.agent.catalog > loadlab/embedded/agent/catalog.json

Stock is informational: the agent never refuses an add for stock, so the cart a
session should end with depends only on its messages.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any

CATALOG_SEED = 20240611
PRODUCT_COUNT = 200
SKU_PATTERN = re.compile(r"\bP-(\d{4})\b", re.IGNORECASE)

# category -> (product nouns, price range in dollars)
_CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[float, float]]] = {
    "headphones": (("Headphones", "Earbuds", "Headset"), (19.0, 399.0)),
    "laptops": (("Laptop", "Notebook", "Ultrabook"), (399.0, 2499.0)),
    "phones": (("Phone", "Smartphone"), (149.0, 1299.0)),
    "cameras": (("Camera", "Action Cam", "Lens"), (99.0, 1899.0)),
    "kitchen": (("Blender", "Kettle", "Toaster", "Coffee Maker"), (15.0, 249.0)),
    "shoes": (("Running Shoes", "Sneakers", "Boots"), (39.0, 229.0)),
    "jackets": (("Rain Jacket", "Down Jacket", "Fleece"), (49.0, 349.0)),
    "books": (("Cookbook", "Novel", "Travel Guide"), (8.0, 49.0)),
    "toys": (("Puzzle", "Building Set", "Board Game"), (9.0, 129.0)),
    "garden": (("Hose", "Planter", "Pruner"), (7.0, 119.0)),
}
_BRANDS = ("Acme", "Nimbus", "Vertex", "Orbit", "Kestrel", "Lumen", "Solace", "Tundra")
_EDITIONS = ("Pro", "Lite", "Max", "Mini", "Air", "Plus", "Ultra", "Classic")
_STOP_WORDS = frozenset(
    ("a", "an", "and", "any", "are", "can", "do", "for", "have", "i", "in", "is", "it", "me",
     "my", "of", "on", "or", "show", "some", "the", "to", "with", "you", "please", "want",
     "need", "looking", "look", "find", "search", "about", "something")
)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class Product:
    """One catalog entry."""

    sku: str
    name: str
    category: str
    price: float
    stock: int

    def to_json(self) -> dict[str, Any]:
        """The product as the catalog file and tool results show it."""
        return {
            "sku": self.sku,
            "name": self.name,
            "category": self.category,
            "price": self.price,
            "stock": self.stock,
        }


def sku_for(number: int) -> str:
    """The SKU of the ``number``-th product (1-based): ``P-0001`` …"""
    return f"P-{number:04d}"


def extract_skus(text: str) -> tuple[str, ...]:
    """Every SKU mentioned in ``text``, upper-cased, first mention order, no repeats."""
    seen: dict[str, None] = {}
    for match in SKU_PATTERN.finditer(text):
        seen.setdefault(sku_for(int(match.group(1))), None)
    return tuple(seen)


def _stem(word: str) -> str:
    # "headphones" must find "Headphones" and "headphone" alike.
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def _words(text: str) -> list[str]:
    return [_stem(w) for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP_WORDS]


def generate_catalog(seed: int = CATALOG_SEED) -> list[Product]:
    """The catalog as produced by ``seed`` (deterministic; used once to write the file)."""
    rng = random.Random(seed)
    categories = list(_CATEGORIES)
    products = []
    for number in range(1, PRODUCT_COUNT + 1):
        category = categories[(number - 1) % len(categories)]
        nouns, (low, high) = _CATEGORIES[category]
        name = f"{rng.choice(_BRANDS)} {rng.choice(nouns)} {rng.choice(_EDITIONS)}"
        price = round(rng.uniform(low, high)) - 0.01
        stock = rng.choice((0, *range(1, 60), *range(60, 500, 10)))
        products.append(
            Product(sku=sku_for(number), name=name, category=category, price=price, stock=stock)
        )
    return products


def catalog_document(products: Iterable[Product]) -> str:
    """The text of ``catalog.json`` for ``products``."""
    body = {"version": 1, "products": [p.to_json() for p in products]}
    return json.dumps(body, indent=1) + "\n"


class Catalog:
    """The products, indexed by SKU and by category, with a word search."""

    def __init__(self, *, products: Iterable[Product]) -> None:
        self.products: tuple[Product, ...] = tuple(products)
        self._by_sku = {p.sku: p for p in self.products}
        self.categories: tuple[str, ...] = tuple(dict.fromkeys(p.category for p in self.products))
        self._index = {p.sku: frozenset(_words(f"{p.name} {p.category}")) for p in self.products}

    @classmethod
    def load(cls) -> Catalog:
        """Read the catalog shipped with the package."""
        source = resources.files("loadlab.embedded.agent").joinpath("catalog.json")
        rows = json.loads(source.read_text(encoding="utf-8"))["products"]
        return cls(products=(Product(**row) for row in rows))

    def __len__(self) -> int:
        return len(self.products)

    def get(self, sku: str) -> Product | None:
        """The product with this SKU, or None."""
        return self._by_sku.get(sku.upper())

    def category_in(self, text: str) -> str | None:
        """The first catalog category named in ``text`` (singular or plural), or None."""
        words = set(_words(text))
        return next((c for c in self.categories if _stem(c) in words), None)

    def in_category(self, category: str, *, limit: int = 5) -> list[Product]:
        """The first ``limit`` products of a category, in SKU order."""
        return [p for p in self.products if p.category == category][:limit]

    def search(self, text: str, *, limit: int = 5) -> list[Product]:
        """Products ranked by how many words of ``text`` they match (ties in SKU order).

        SKUs named in the text come first. Stop words ("show me", "looking for") are
        ignored and a trailing plural ``s`` does not matter.
        """
        named = [p for sku in extract_skus(text) if (p := self.get(sku)) is not None]
        query = set(_words(SKU_PATTERN.sub(" ", text)))
        scored = [(len(query & self._index[p.sku]), p) for p in self.products]
        ranked = [p for score, p in sorted(scored, key=lambda s: -s[0]) if score > 0]
        return list(dict.fromkeys([*named, *ranked]))[:limit]


def main() -> None:
    """Print the generated catalog document (how ``catalog.json`` was written)."""
    print(catalog_document(generate_catalog()), end="")


if __name__ == "__main__":
    main()
