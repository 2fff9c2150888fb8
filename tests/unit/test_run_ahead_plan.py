"""Which checks marked concurrent can run ahead is seen at collection, from their fixtures alone: each must be a
parameter, a session fixture or a function-scoped fixture built from the check's `CheckScope`."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from polycheck.pytest_plugin.concurrent import start_order, why_not_ahead


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


class Collected:
    """What start_order reads of a collected check: its markers and its fixtures' names."""

    def __init__(self, name: str, marks: tuple[str, ...], fixturenames: tuple[str, ...] = ()) -> None:
        self.name, self.marks, self.fixturenames = name, marks, fixturenames

    def iter_markers(self) -> list[SimpleNamespace]:
        return [SimpleNamespace(name=name) for name in self.marks]


def test_checks_run_ahead_orders_first_then_in_the_runbooks_order_of_steps() -> None:
    """A crash-looping release is judged by the rollout's reads as soon as the order flows have started, not after
    the health and contract checks collected before the rollout suite."""
    collected = [
        Collected("health", ("smoke", "rollback", "concurrent")),
        Collected("contract", ("smoke", "concurrent")),
        Collected("post-deploy", ("postdeploy", "smoke", "concurrent")),
        Collected("rollout", ("smoke", "rollout", "rollback", "concurrent")),
        Collected("order flow", ("smoke", "synthetic", "concurrent"), ("orders", "service")),
        Collected("unmarked", ("concurrent",)),
        Collected("rollout 2", ("rollout", "smoke", "concurrent")),
    ]
    ordered = [c.name for c in sorted(collected, key=start_order)]  # type: ignore[arg-type]
    assert ordered == ["order flow", "rollout", "rollout 2", "health", "contract", "post-deploy", "unmarked"]
