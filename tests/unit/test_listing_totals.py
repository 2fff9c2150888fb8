"""The listing-total rule of polyshop-api.md (`expect_total_counts_the_page`): never below the page's items, equal to
their count (after the offset) on a page that is not full, blamed on the service that answered."""

from __future__ import annotations

from typing import Any

import pytest

from polycheck.checks.contract_checks import expect_total_counts_the_page
from polycheck.clients.http import Exchange
from polycheck.core.failures import CheckFailure

LINE = "polyshop-api.md Product, GET /api/products"


def _exchange() -> Exchange:
    return Exchange("gateway", "GET", "http://gw/api/products?limit=3", {}, None, "req-1", "trace-1", status=200,
                    answered_by="product")


def _judge(items: int, total: Any, *, limit: int = 3, offset: int = 0) -> None:
    expect_total_counts_the_page({"items": [{}] * items, "total": total}, _exchange(), limit=limit, offset=offset, line=LINE)


@pytest.mark.parametrize(("items", "total", "offset"), [
    (3, 3, 0), (3, 40, 0),  # a full page says nothing of the rest
    (2, 2, 0), (0, 0, 0),  # a page that is not full holds them all
    (1, 40, 39), (3, 40, 30),  # after an offset: the last page, a full page in the middle
    (0, 39, 39), (0, 5, 39),  # past the end: nothing more to list
])
def test_a_consistent_total_passes(items: int, total: int, offset: int) -> None:
    _judge(items, total, offset=offset)


@pytest.mark.parametrize(("items", "total", "offset", "says"), [
    (3, 2, 0, "total 2 is smaller than the 3 items on the page"),
    (2, 1, 39, "total 1 is smaller than offset 39 + the 2 items on the page"),
    (2, 4, 0, "the page is not full (2 items, limit 3), yet total is 4, not 2"),
    (0, 2, 0, "the page is not full (0 items, limit 3), yet total is 2, not 0"),
    (1, 42, 39, "yet total is 42, not 40"),
    (0, "3", 0, "items list, total '3'"),
    (0, -1, 0, "total -1"),
])
def test_an_inconsistent_total_fails_naming_the_line_and_the_service(items: int, total: Any, offset: int, says: str) -> None:
    with pytest.raises(CheckFailure) as failure:
        _judge(items, total, offset=offset)
    assert says in failure.value.msg and LINE in failure.value.msg, failure.value.msg
    assert "(gateway -> product) GET http://gw/api/products" in failure.value.msg and "trace-id trace-1" in failure.value.msg
    assert failure.value.culprits == ("product",)
