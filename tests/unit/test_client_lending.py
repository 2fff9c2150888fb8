"""The run's HTTP clients are lent to one request at a time (polycheck.clients.lending): no two requests in flight
share a client, so no thread's pool pass can close a connection another thread is using (httpcore's shared pool
did, under load: "ReadError: [Errno 9] Bad file descriptor" in the checker, blamed on the gateway); keep-alive is
kept between the requests a client is lent to."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from polycheck.clients.http import Connections, ExchangeLog, ServiceClient, timeout_from
from polycheck.clients.lending import ONE_CONNECTION, ClientLender
from polycheck.clients.tracing import CheckTrace


def answering_lender() -> ClientLender:
    return ClientLender(lambda: httpx.Client(base_url="http://svc.test", limits=httpx.Limits(**ONE_CONNECTION),
                                             transport=httpx.MockTransport(lambda request: httpx.Response(200))))


def test_requests_in_flight_at_once_hold_distinct_clients_and_a_client_given_back_is_lent_again() -> None:
    lender = answering_lender()
    with ExitStack() as held:
        clients = [held.enter_context(lender.lease()) for _ in range(5)]
        assert len({id(client) for client in clients}) == 5
        assert lender.size == 5
    with lender.lease() as again:
        assert again is clients[0]  # the most recently given back first (the stack gave them back last to first)
    with lender.lease() as once_more:
        assert once_more is clients[0]
    assert lender.size == 5, "a client given back was not lent again: a new one was made"


def test_threads_in_flight_at_once_never_share_a_client() -> None:
    lender = answering_lender()
    together = threading.Barrier(8)

    def hold() -> int:
        with lender.lease() as client:
            together.wait(timeout=10)  # all eight hold a client at the same moment
            return id(client)

    with ThreadPoolExecutor(8) as pool:
        held = list(pool.map(lambda _: hold(), range(8)))
    assert len(set(held)) == 8, f"two requests in flight held the same client: {held}"


def test_closing_closes_the_clients_given_back_at_once_and_a_lent_one_when_it_comes_back() -> None:
    lender = answering_lender()
    with lender.lease() as first, lender.lease() as second:
        pass
    lent = lender.lease()
    client = lent.__enter__()
    assert client is first  # given back last (the with-statement gave second back first): lent again first
    lender.close()
    assert second.is_closed, "a client given back was left open by close()"
    assert not client.is_closed, "a client was closed under the request it is lent to"
    lent.__exit__(None, None, None)
    assert client.is_closed and first.is_closed and second.is_closed
    with pytest.raises(RuntimeError, match="closed"):
        with lender.lease():
            pass


class Peers(BaseHTTPRequestHandler):
    """Answers 200 on a kept-alive HTTP/1.1 connection and counts the connections it was asked on."""

    protocol_version = "HTTP/1.1"
    seen: set[tuple[str, int]] = set()
    lock = threading.Lock()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        with self.lock:
            self.seen.add(self.client_address)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def keep_alive_server() -> Iterator[tuple[str, set[tuple[str, int]]]]:
    handler = type("Handler", (Peers,), {"seen": set(), "lock": threading.Lock()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.seen
    finally:
        server.shutdown()
        server.server_close()


def service_client(url: str, connections: Connections) -> ServiceClient:
    return ServiceClient("product", url, timeout=timeout_from(2, 4), trace=CheckTrace(), log=ExchangeLog(),
                         connections=connections)


def test_requests_one_after_another_reuse_one_kept_alive_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("polycheck.clients.http.KEEPALIVE_EXPIRY_SECONDS", 60.0)  # a slow machine idles no connection out
    connections = Connections()
    try:
        with keep_alive_server() as (url, seen):
            for _ in range(5):
                response, exchange = service_client(url, connections).send("GET", "/health")
                assert response is not None and response.status_code == 200, exchange.error
        assert len(seen) == 1, f"5 requests one after another opened {len(seen)} connections, not 1 kept alive"
    finally:
        connections.close()


def test_many_threads_through_one_base_url_each_get_their_answer_and_hold_at_most_one_client_each() -> None:
    connections = Connections()
    try:
        with keep_alive_server() as (url, seen), ThreadPoolExecutor(24) as pool:
            def ask(_: int) -> str | None:
                response, exchange = service_client(url, connections).send("GET", "/health")
                return None if response is not None and response.status_code == 200 else exchange.error or "no 200"
            failed = [error for error in pool.map(ask, range(240)) if error]
        assert failed == []
        lent = connections.lender(url, timeout_from(2, 4)).size
        assert 1 <= lent <= 24, f"{lent} clients made for the requests of 24 threads"
    finally:
        connections.close()


def test_the_liveness_asked_after_a_timeout_through_the_gateway_uses_the_services_own_clients() -> None:
    """The gateway's order request times out; order's liveness is asked at order's own address, with a client of
    that address (made once), not one of the gateway's (which would open a connection to order in its one slot)."""
    from polycheck.core.attribution import Routes
    from polycheck.core.config import CONTRACT_ROUTES

    released = threading.Event()

    class Hanging(Peers):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            released.wait(10)  # the gateway's order route hangs until the test ends

    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (Hanging,), {"seen": set(), "lock": threading.Lock()}))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    gateway_url = f"http://127.0.0.1:{server.server_address[1]}"
    connections, timeout = Connections(), timeout_from(2, 0.3)
    try:
        with keep_alive_server() as (order_url, seen):
            gateway = ServiceClient("gateway", gateway_url, timeout=timeout, trace=CheckTrace(), log=ExchangeLog(),
                                    connections=connections, routes=Routes(CONTRACT_ROUTES), direct_urls={"order": order_url})
            response, exchange = gateway.send("GET", "/api/orders/ord_1")
            assert response is None and exchange.timed_out, exchange.error
            assert f"order's liveness at {order_url}/health/live answered HTTP 200 at once" in (exchange.error or ""), exchange.error
            assert len(seen) == 1 and connections.lender(order_url, timeout).size == 1
            assert connections.lender(gateway_url, timeout).size == 1, "the gateway's clients served the liveness too"
    finally:
        released.set()
        server.shutdown()
        server.server_close()
        connections.close()
