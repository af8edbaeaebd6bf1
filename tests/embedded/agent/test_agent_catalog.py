"""The shipped catalog and its search."""

from __future__ import annotations

from importlib import resources

from loadlab.embedded.agent.catalog import (
    PRODUCT_COUNT,
    Catalog,
    catalog_document,
    extract_skus,
    generate_catalog,
)


def test_the_shipped_file_is_the_generators_output() -> None:
    shipped = resources.files("loadlab.embedded.agent").joinpath("catalog.json").read_text()
    assert shipped == catalog_document(generate_catalog())


def test_the_catalog_has_200_products_with_sequential_skus() -> None:
    catalog = Catalog.load()
    assert len(catalog) == PRODUCT_COUNT == 200
    assert [p.sku for p in catalog.products] == [f"P-{n:04d}" for n in range(1, 201)]
    assert len(catalog.categories) == 10
    assert all(p.price > 0 and p.stock >= 0 and p.name for p in catalog.products)


def test_get_is_case_insensitive_and_unknown_skus_are_none() -> None:
    catalog = Catalog.load()
    assert catalog.get("p-0042") is catalog.get("P-0042") is not None
    assert catalog.get("P-0201") is None


def test_search_ranks_by_matching_words_and_puts_named_skus_first() -> None:
    catalog = Catalog.load()
    hoses = catalog.search("looking for a garden hose")
    assert hoses and all("Hose" in p.name for p in hoses)
    named = catalog.search("P-0002 or a kettle", limit=3)
    assert named[0].sku == "P-0002" and all("Kettle" in p.name for p in named[1:])
    assert catalog.search("zzz unknown words") == []


def test_category_lookup_ignores_plural_and_case() -> None:
    catalog = Catalog.load()
    assert catalog.category_in("Any good JACKET?") == "jackets"
    assert catalog.category_in("hello there") is None
    assert [p.category for p in catalog.in_category("books", limit=3)] == ["books"] * 3


def test_extract_skus_normalises_and_deduplicates() -> None:
    assert extract_skus("p-0007, P-0042 and p-0007 again; P-12345 is not one") == (
        "P-0007",
        "P-0042",
    )
