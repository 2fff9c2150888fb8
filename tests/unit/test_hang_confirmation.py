"""One read timeout marks a service as hanging only when its own liveness does not answer either: a single slow
answer (a GC pause, one slow query) must not fail every later request to the service, and roll it back."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from polycheck.core.attribution import GATEWAY, Routes, ServiceBoard
from polycheck.core.config import CONTRACT_ROUTES
from polycheck.clients.http import ExchangeLog, ServiceClient, timeout_from
from polycheck.clients.tracing import CheckTrace

ORDER, GATEWAY_URL = "http://order.test", "http://gateway.test"


def client(service: str, handle: Callable[[httpx.Request], httpx.Response], board: ServiceBoard) -> ServiceClient:
    base = GATEWAY_URL if service == GATEWAY else ORDER
    made = ServiceClient(service, base, timeout=timeout_from(0.5, 0.5), trace=CheckTrace(), log=ExchangeLog(), board=board,
                         routes=Routes(CONTRACT_ROUTES) if service == GATEWAY else None,
                         direct_urls={"order": ORDER} if service == GATEWAY else None,
                         transport=httpx.MockTransport(handle))
    return made


def slow_orders(liveness_hangs: bool) -> Callable[[httpx.Request], httpx.Response]:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/health/live" and not liveness_hangs:
            return httpx.Response(200, json={"status": "ok"})
        raise httpx.ReadTimeout("timed out", request=request)
    return handle


def test_one_slow_answer_does_not_mark_the_service_hanging() -> None:
    board = ServiceBoard()
    response, exchange = client("order", slow_orders(liveness_hangs=False), board).send("GET", "/api/orders/ord_1")
    assert response is None and exchange.timed_out
    assert board.hanging("order") is None
    assert "liveness at http://order.test/health/live answered HTTP 200 at once: a slow request" in (exchange.error or "")


def test_a_timeout_whose_liveness_hangs_too_marks_the_service_and_later_requests_fail_at_once() -> None:
    board = ServiceBoard()
    order = client("order", slow_orders(liveness_hangs=True), board)
    order.send("GET", "/api/orders/ord_1")
    assert board.hanging("order") is not None and "its liveness did not answer either" in board.hanging("order")
    calls: list[str] = []
    later = client("order", lambda request: calls.append(str(request.url)) or httpx.Response(200), board)
    _, exchange = later.send("GET", "/api/orders/ord_2")
    assert calls == [] and exchange.error is not None and exchange.error.startswith("not sent: order is hanging")


def test_through_the_gateway_the_routed_service_is_asked_at_its_own_address() -> None:
    board, asked = ServiceBoard(), []

    def handle(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        if request.url.host == "order.test":
            return httpx.Response(200, json={"status": "ok"})
        raise httpx.ReadTimeout("timed out", request=request)

    _, exchange = client(GATEWAY, handle, board).send("GET", "/api/orders/ord_1")
    assert asked == ["http://gateway.test/api/orders/ord_1", "http://order.test/health/live"], asked
    assert exchange.answered_by == "order" and board.hanging("order") is None and board.hanging(GATEWAY) is None
