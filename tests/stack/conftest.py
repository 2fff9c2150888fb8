"""Fixtures of the stack's self-tests: the gateway as a check sees it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from polycheck.doubles.localstack import LocalStack
from tests.support.shop import Buyer, Shop
from tests.support.stack_control import StackControl


@pytest.fixture(scope="module")
def shop(local_stack: LocalStack) -> Iterator[Shop]:
    client = Shop(local_stack)
    yield client
    client.close()


@pytest.fixture
def buyer(shop: Shop, stack: StackControl) -> Buyer:
    """A fresh synthetic buyer; depending on `stack` clears the faults around the test."""
    return shop.new_buyer()
