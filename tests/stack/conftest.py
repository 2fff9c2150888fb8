"""A Kubernetes simulator per test module, back to its seed around every test that asks for it."""

from __future__ import annotations

from typing import Iterator

import pytest

from stack.kube import KubeSimulator
from stack.kube.testing import SimulatorThread


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
