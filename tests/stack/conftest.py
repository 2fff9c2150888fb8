"""Fixtures of the stack's self-tests: the gateway as a check sees it, and a Kubernetes simulator per module."""

from __future__ import annotations

from typing import Iterator

import pytest

from polycheck.localstack import LocalStack
from stack.kube import KubeSimulator
from stack.kube.testing import SimulatorThread
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


@pytest.fixture(scope="module")
def kube() -> Iterator[SimulatorThread]:
    """The simulator behind a real HTTP server on a loopback port, in a background thread."""
    with SimulatorThread(KubeSimulator()) as running:
        yield running


@pytest.fixture
def seeded(kube: SimulatorThread) -> Iterator[None]:
    """The cluster at its seed before and after the test."""
    kube.sim.reset()
    yield
    kube.sim.reset()
