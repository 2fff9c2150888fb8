"""A run's independent reads, sent at once: each check's requests go out concurrently, under the check's own
trace and request ids, and the check later asserts on what came back (its exchange log shows them as its own)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from collections.abc import Callable

from polycheck.clients.http import Connections, ExchangeLog, ServiceClient
from polycheck.clients.tracing import CheckTrace

MAX_IN_FLIGHT = 16
GATEWAY_PROBE = "GATEWAY_PROBE"  # in @pytest.mark.requests: the routed service's gateway_probe, through the gateway


@dataclass(frozen=True)
class Read:
    """A read-only GET a check makes to its own service, declared once: the check's marker names it
    (`@pytest.mark.requests(HEALTH)`) and its helper sends `path`, so the run can send it early."""

    path: str
    method: str = "GET"

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class PlannedRequest:
    """A read-only GET one check will make: to `service`'s client (the gateway's for a routed path)."""

    check: str  # the check's node id
    service: str
    path: str


def send_all(plan: list[PlannedRequest], traces: dict[str, CheckTrace], connections: Connections,
             client_of: Callable[[str, CheckTrace, ExchangeLog], ServiceClient]) -> None:
    """Send every planned request concurrently, without waiting: each answer is kept for its check, and a check
    that asks for its answer before it came waits for it (`Connections.take`)."""
    def one(request: PlannedRequest) -> None:
        client = client_of(request.service, traces[request.check], ExchangeLog())
        response, exchange = client.send("GET", request.path, fresh=True)
        connections.keep(exchange, response)

    if not plan:
        return
    pool = ThreadPoolExecutor(max_workers=min(MAX_IN_FLIGHT, len(plan)), thread_name_prefix="polycheck-fan-out")
    for request in plan:
        connections.expect(traces[request.check].trace_id, pool.submit(one, request))
    pool.shutdown(wait=False)
