"""order fails first; then most services time out: the self-tests' shared cause found within the group wait.

The second check marks five services hanging on the run's board, as the HTTP client does when it confirms a
timeout, then fails on one of them: its verdict is INCONCLUSIVE with a shared cause, and order's rollback, still
waiting out the group wait, must be held. The order of the two checks is fixed (`-p no:randomly`)."""

from __future__ import annotations

import pytest

from polycheck.core.failures import check_failed
from polycheck.pytest_plugin.state import board_of

TIMED_OUT = ("auth", "product", "inventory", "payment", "search")


@pytest.mark.smoke
@pytest.mark.rollback("order")
def test_order_fails_first() -> None:
    check_failed("order /health answered 503 (request id req-order-first)", culprit="order")


@pytest.mark.smoke
@pytest.mark.rollback("search")
def test_most_services_then_time_out(request: pytest.FixtureRequest) -> None:
    board = board_of(request.config)
    for service in TIMED_OUT:
        board.mark_hanging(service, f"GET http://{service}/health accepted the connection but sent no answer (confirmed)")
    check_failed("GET http://search/health timed out after 2 s", culprit="search")
