"""Customers and kubelets for the local stack: steady API traffic to every service, and probes of `/health*`.

A real PolyShop has users: post-deploy validation judges their requests. The local stack has none of its own, so
a run that starts the local stack also starts its customers (`shoppers`, CUSTOMERS_PER_SECOND per service) and its
post-deploy checks wait, within their data deadline, until each service's window holds the evidence the minimums
ask for; a self-test (or the bench) against an already running stack starts them itself. `probes` stands for the
kubelet's liveness and readiness probes, which are not the service's API traffic.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import httpx

# one read-only API request per service (polyshop-api.md); the gateway's is routed to product
API_PATHS = {
    "auth": "/api/auth/me",
    "product": "/api/products?limit=1",
    "inventory": "/api/inventory/reservations/polycheck-probe",
    "order": "/api/orders/polycheck-probe",
    "payment": "/api/payments/polycheck-probe",
    "notification": "/api/notifications/outbox?to=probe@synthetic.polyshop.test",
    "search": "/api/search?q=widget&limit=1",
    "gateway": "/api/products?limit=1",
}
PROBE_PATHS = ("/health/live", "/health/ready", "/health")
CUSTOMERS_PER_SECOND = 20.0  # per service: 100 requests (prometheus.min_observations) within about 5 s


class Traffic:
    """GET requests to each URL at `per_second` (a few customers each, so a slow answer does not slow the rest),
    until stopped."""

    PER_CUSTOMER = 4.0  # requests per second one customer (thread) sends at most

    def __init__(self, urls: Mapping[str, str], per_second: float) -> None:
        customers = max(1, math.ceil(per_second / self.PER_CUSTOMER))
        self.urls, self.interval = dict(urls), customers / per_second
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._drive, args=(name,), daemon=True)
                         for name in urls for _ in range(customers)]

    def _drive(self, name: str) -> None:
        with httpx.Client(timeout=5, headers={"X-Synthetic": "true"}) as client:
            next_at = time.monotonic()
            while not self._stop.is_set():
                try:
                    client.get(self.urls[name])
                except httpx.HTTPError:
                    pass  # a faulted service may not answer: the traffic goes on
                next_at = max(next_at + self.interval, time.monotonic() - self.interval)
                self._stop.wait(max(0.0, next_at - time.monotonic()))  # a customer's cadence, not a wait for an outcome

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)


def shoppers(services: Mapping[str, str], per_second: float = 12.0, only: tuple[str, ...] = ()) -> Traffic:
    """API traffic to each service at its own address (`only`: those services alone)."""
    return Traffic({name: base.rstrip("/") + API_PATHS[name] for name, base in services.items()
                    if name in API_PATHS and (not only or name in only)}, per_second)


@contextmanager
def probes(services: Mapping[str, str], per_second: float = 4.0) -> Iterator[Traffic]:
    """The kubelet's probes: every service's `/health/live`, `/health/ready` and `/health`, `per_second` each."""
    urls = {f"{name} {path}": base.rstrip("/") + path for name, base in services.items() for path in PROBE_PATHS}
    with Traffic(urls, per_second) as traffic:
        yield traffic
