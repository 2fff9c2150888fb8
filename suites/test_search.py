"""Runbook Section 6 synthetic "search index"."""

from __future__ import annotations

import random

import pytest

from polycheck.core.config import EnvConfig
from polycheck.checks.flow import step
from polycheck.clients.shop import ShopApi

pytestmark = [pytest.mark.smoke, pytest.mark.synthetic, pytest.mark.concurrent, pytest.mark.rollback("search")]


def test_search_index_is_fresh(shop: ShopApi, env_config: EnvConfig) -> None:
    """Runbook Section 6: the search index trails the catalogue by less than the env's threshold."""
    with step("read /api/search/status", blame="search"):
        status = shop.search_status()
    limit = env_config.thresholds.search_lag_seconds
    with step(f"the index trails the catalogue by at most {limit:g} s", blame="search"):
        _fresh(status, limit)


def _fresh(status: dict, limit: float) -> None:
    assert isinstance(status["lag_seconds"], (int, float)), f"lag_seconds is {status['lag_seconds']!r}"
    assert status["lag_seconds"] <= limit, (
        f"the search index trails the catalogue by {status['lag_seconds']:.1f} s (last indexed {status['last_indexed_at']}), "
        f"over the {limit:g} s threshold: new and changed products are not findable"
    )
    assert status["documents"] > 0, f"the search index holds {status['documents']} documents"


def test_catalogue_product_is_found_by_name(shop: ShopApi) -> None:
    """Runbook Section 6: a product known from the catalogue is found by its name."""
    with step("pick a product from the catalogue", blame="product"):
        catalogue = shop.products(limit=100)
        assert catalogue["items"], "the catalogue lists no product"
        product = random.choice(catalogue["items"])
    with step(f"search for {product['name']!r} finds product {product['id']}", blame="search"):
        found = shop.search(product["name"], limit=20)
        ids = [item.get("id") for item in found["items"]]
        assert product["id"] in ids, (
            f"searching {product['name']!r} did not find product {product['id']} ({product['sku']}); "
            f"got {found['total']} results: {ids[:5]}"
        )
