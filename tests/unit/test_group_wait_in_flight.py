"""The group wait waits for the requests other checks had out when the first failure came: they are evidence of
the same moment (a gateway hanging answers them all late, on the clients' own timeouts). Both ways, through the
engine and its real timer, with each moment made observable (no sleep decides the outcome)."""

from __future__ import annotations

import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

from polycheck.clients.http import ExchangeLog, ServiceClient, timeout_from
from polycheck.clients.tracing import CheckTrace
from polycheck.core.attribution import ServiceBoard
from polycheck.core.inflight import InFlight
from polycheck.rollback.engine import RollbackEngine
from tests.unit.test_client_lending import Peers
from tests.unit.test_rollback_memory import PAYMENT, Cluster, engine, escalations, undos

WAIT = 'group_wait_seconds = 0.05\n'
TIMEOUTS = '[http]\nconnect_timeout_seconds = 0.1\nread_timeout_seconds = 0.2\n'  # requests are out 0.6 s at most


class SeenWaiting(InFlight):
    """An InFlight that says when the group wait's end began to wait for the requests out (`waiting`)."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = threading.Event()

    def wait_for_sent_before(self, moment: float, timeout: float) -> int:
        self.waiting.set()
        return super().wait_for_sent_before(moment, timeout)


def with_in_flight(tmp_path: Path, extra: str = "") -> tuple[RollbackEngine, SeenWaiting, threading.Event]:
    in_flight, decided = SeenWaiting(), threading.Event()
    run = engine(tmp_path, Cluster(), WAIT + PAYMENT + extra)
    run.in_flight = in_flight
    run.notify = lambda line, bad: decided.set() if line.startswith(("ROLLED BACK", "ESCALATION")) else None
    return run, in_flight, decided


def out_until(in_flight: InFlight, back: threading.Event, then: object = None) -> tuple[threading.Thread, threading.Event]:
    """A request of another check, out until `back` is set; `then()` runs as its check judges the answer."""
    sent = threading.Event()

    def request() -> None:
        with in_flight.sent():
            sent.set()
            back.wait(30)
            if callable(then):
                then()

    thread = threading.Thread(target=request, daemon=True)
    thread.start()
    assert sent.wait(10)
    return thread, sent


def test_a_failure_that_a_request_out_at_the_first_failure_brings_holds_the_rollback(tmp_path: Path) -> None:
    """order fails; payment's request was already out and comes back a 504 after the group wait: neither is rolled
    back (the blast radius), and the escalation says what the wait waited for."""
    run, in_flight, decided = with_in_flight(tmp_path)
    back = threading.Event()
    thread, _ = out_until(in_flight, back, lambda: run.on_failure(
        "test_flow[payment]", ("payment",), "payment 504 upstream_timeout", rollback=True, failed_at=time.time()))
    run.on_failure("test_health[order]", ("order",), "order /health answered in 3.00 s", rollback=True, failed_at=time.time())
    assert in_flight.waiting.wait(10), "the group wait ended without looking at the request still out"
    assert undos(run) == [] and not run.fired and not run.held, "decided while a request of the same moment was out"
    back.set()  # payment's 504 comes back, its check fails it
    thread.join(10)
    assert decided.wait(10), "nothing was decided after the request came back"
    assert undos(run) == [] and not run.fired and set(run.held) == {"order", "payment"}
    (escalation,) = escalations(run)
    assert "2 services failing at once (order, payment) within the 0.05 s group wait and the 1 request other checks " \
           "had out at the first failure" in escalation["detail"], escalation


def test_a_request_out_at_the_failure_that_comes_back_well_lets_the_rollback_go(tmp_path: Path) -> None:
    run, in_flight, decided = with_in_flight(tmp_path)
    back = threading.Event()
    thread, _ = out_until(in_flight, back)
    run.on_failure("test_health[order]", ("order",), "order /health 503", rollback=True, failed_at=time.time())
    assert in_flight.waiting.wait(10)
    assert not run.fired
    came_back = time.time()
    back.set()
    thread.join(10)
    assert decided.wait(10), "the rollback never came after the request came back"
    assert undos(run) == ["done"] and set(run.fired) == {"order"} and not run.held
    assert run.fired["order"] >= came_back, "rolled back before the request out at the failure came back"
    (decision,) = [r for r in run.records if r["step"] == "decision"]
    assert 0 < decision["waited_for_requests_seconds"] <= decision["seconds_after_failure"], decision


def test_a_request_sent_after_the_failure_is_not_waited_for(tmp_path: Path) -> None:
    run, in_flight, decided = with_in_flight(tmp_path)
    run.on_failure("test_health[order]", ("order",), "order /health 503", rollback=True, failed_at=time.time())
    back = threading.Event()
    thread, _ = out_until(in_flight, back)  # sent after order's failure: a later moment's evidence
    try:
        assert decided.wait(10), "the rollback waited for a request sent after the failure"
        assert undos(run) == ["done"] and not in_flight.waiting.is_set()
        (decision,) = [r for r in run.records if r["step"] == "decision"]
        assert "waited_for_requests_seconds" not in decision, decision
    finally:
        back.set()
        thread.join(10)


def test_a_request_that_never_comes_back_holds_the_rollback_no_longer_than_the_clients_timeouts(tmp_path: Path) -> None:
    run, in_flight, decided = with_in_flight(tmp_path, TIMEOUTS)
    assert abs(run.in_flight_bound() - 0.6) < 1e-9  # 2 x (connect 0.1 s + read 0.2 s)
    back = threading.Event()
    thread, _ = out_until(in_flight, back)
    try:
        failed = time.monotonic()
        run.on_failure("test_health[order]", ("order",), "order /health 503", rollback=True, failed_at=time.time())
        assert decided.wait(10), "a request that never came back held the rollback for good"
        assert time.monotonic() - failed >= 0.6 and undos(run) == ["done"]
    finally:
        back.set()
        thread.join(10)


def test_the_runs_end_decides_at_once_while_the_wait_waits_for_a_request(tmp_path: Path) -> None:
    run, in_flight, decided = with_in_flight(tmp_path)
    back = threading.Event()
    thread, _ = out_until(in_flight, back)
    run.on_failure("test_health[order]", ("order",), "order /health 503", rollback=True, failed_at=time.time())
    assert in_flight.waiting.wait(10)
    run.settle()  # the run's end
    assert undos(run) == ["done"]
    back.set()
    thread.join(10)
    run.on_failure("test_health[payment]", ("payment",), "payment /health 503", rollback=True)  # a new wait, later
    run.settle()
    assert undos(run) == ["done"], "the first wait's timer decided again after the run's end"


def test_a_service_clients_request_is_out_until_its_outcome_is_known() -> None:
    board = ServiceBoard()
    asked, release = threading.Event(), threading.Event()
    seen_out: list[int] = []

    class Slow(Peers):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            seen_out.append(board.in_flight.out_since_before(board.in_flight.clock() + 1))
            asked.set()
            release.wait(10)
            super().do_GET()

    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (Slow,), {"seen": set(), "lock": threading.Lock()}))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = ServiceClient("product", f"http://127.0.0.1:{server.server_address[1]}", timeout=timeout_from(2, 5),
                               trace=CheckTrace(), log=ExchangeLog(), board=board)
        done: list[int] = []
        sender = threading.Thread(target=lambda: done.append(client.send("GET", "/health")[0].status_code))  # type: ignore[union-attr]
        sender.start()
        assert asked.wait(10)
        assert seen_out == [1] and board.in_flight.out_since_before(board.in_flight.clock() + 1) == 1
        release.set()
        sender.join(10)
        assert done == [200] and board.in_flight.out_since_before(board.in_flight.clock() + 1) == 0
        client.close()
    finally:
        release.set()
        server.shutdown()
        server.server_close()
