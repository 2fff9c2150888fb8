"""Which checks marked concurrent can run ahead is seen at collection, from their fixtures alone: each must be a
parameter, a session fixture or a function-scoped fixture built from the check's `CheckScope`."""

from __future__ import annotations

import pytest

from polycheck.pytest_plugin.concurrent import why_not_ahead


@pytest.fixture(scope="session")
def shared_thing() -> str:
    return "shared"


@pytest.fixture
def check_scope() -> object:
    return object()


@pytest.fixture
def built_from_scope(check_scope: object, shared_thing: str) -> str:
    return shared_thing


@pytest.fixture
def on_its_own() -> str:
    return "not from the scope"


@pytest.mark.parametrize("service", ["auth"])
def test_a_check_given_only_its_scope_params_and_session_fixtures_can_run_ahead(
        request: pytest.FixtureRequest, service: str, built_from_scope: str) -> None:
    assert why_not_ahead(request.node) is None


def test_a_function_fixture_not_built_from_the_scope_says_why_it_cannot(
        request: pytest.FixtureRequest, built_from_scope: str, on_its_own: str) -> None:
    assert why_not_ahead(request.node) == "on_its_own is a function-scoped fixture not built from its CheckScope"


def test_a_pytest_function_fixture_cannot_run_ahead(request: pytest.FixtureRequest, tmp_path: object) -> None:
    assert why_not_ahead(request.node) is not None
