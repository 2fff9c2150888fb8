"""Fixtures of the self-tests: one local stack per test session, faults cleared after every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from polycheck.doubles.localstack import LocalStack
from tests.support.stack_control import StackControl, repo_root

pytest_plugins = ["tests.support.checkout_guard"]  # the self-tests write only to temporary folders


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    stack = LocalStack.start(cwd=repo_root())
    yield stack
    stack.stop()


@pytest.fixture
def stack(local_stack: LocalStack) -> Iterator[StackControl]:
    """The session's stack, healthy at the start and at the end of the test."""
    control = StackControl(local_stack)
    control.clear()
    yield control
    control.clear()
    control.close()
