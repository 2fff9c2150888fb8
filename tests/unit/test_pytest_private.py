"""pytest's private attributes the run-ahead reads (`polycheck.pytest_plugin.pytest_private`) are where it reads
them: this fails loudly on a pytest release that moves them (pinned 9.2.0)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest

from polycheck.pytest_plugin import pytest_private as private


@pytest.fixture(scope="session")
def _session_value() -> str:
    return "s"


@pytest.fixture
def _built(_session_value: str) -> Iterator[str]:
    yield _session_value + "f"


def test_the_private_attributes_the_run_ahead_reads_are_there(request: pytest.FixtureRequest, _built: str) -> None:
    item = request.node
    assert isinstance(item, pytest.Function)
    assert private.argnames(item) == ("request", "_built")
    built = private.fixturedef(item, "_built")
    assert built is not None and private.fixture_scope(built) == "function"
    assert private.fixture_argnames(built) == ("_session_value",)
    generator = private.fixture_function(built)(_session_value="x")
    assert inspect.isgenerator(generator) and next(generator) == "xf"
    session = private.fixturedef(item, "_session_value")
    assert session is not None and private.fixture_scope(session) == "session"
    assert private.cached(session) == (True, "s", None)
    assert private.fixturedef(item, "no_such_fixture") is None
