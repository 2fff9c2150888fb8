"""Wait for a real Prometheus to show what a self-test injected."""

from __future__ import annotations

from collections.abc import Callable, Collection

from polycheck.core.polling import poll
from polycheck.clients.prometheus import PrometheusClient
from polycheck.doubles.promserver import LocalPrometheus


def until_query(prometheus: LocalPrometheus, promql: str, holds: Callable[[float], bool], timeout: float = 20,
                drive: Callable[[], None] | None = None) -> None:
    """Poll Prometheus until `promql` has a value for which `holds` is true; `drive` sends traffic before each look
    (a counter series born in one burst never shows a rate: Prometheus needs it to grow between two scrapes)."""
    def look() -> list[float]:
        if drive is not None:
            drive()
        return [s.value for s in client.query(promql, allow_empty=True)]

    with PrometheusClient(prometheus.url, 5) as client:
        poll(look, lambda v: bool(v) and holds(max(v)), timeout=timeout, what=f"{promql} to show the fault")


API_COUNT = 'sum by (service) (increase(http_requests_total{route!~"/metrics|/health.*"}[15s]))'


def until_api_requests(prometheus: LocalPrometheus, services: Collection[str], holds: Callable[[float], bool],
                       what: str, timeout: float = 45) -> dict[str, float]:
    """Poll until every one of `services` has a count of API requests in the last 15 s for which `holds` is true
    (a service with no series counts 0)."""
    def look() -> dict[str, float]:
        counted = {s.labels.get("service", ""): s.value for s in client.query(API_COUNT, allow_empty=True)}
        return {name: counted.get(name, 0.0) for name in services}

    with PrometheusClient(prometheus.url, 5) as client:
        return poll(look, lambda seen: all(holds(v) for v in seen.values()), timeout=timeout, what=what,
                    describe=lambda seen: ", ".join(f"{k} {v:.0f}" for k, v in seen.items()))
