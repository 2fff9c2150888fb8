"""Wait for a real Prometheus to show what a self-test injected."""

from __future__ import annotations

from collections.abc import Callable

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
