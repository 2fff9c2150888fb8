"""Wait for a real Prometheus to show what a self-test injected."""

from __future__ import annotations

from typing import Callable

from polycheck.polling import poll
from polycheck.prometheus import PrometheusClient
from polycheck.promserver import LocalPrometheus


def until_query(prometheus: LocalPrometheus, promql: str, holds: Callable[[float], bool], timeout: float = 20) -> None:
    """Poll Prometheus until `promql` has a value for which `holds` is true."""
    with PrometheusClient(prometheus.url, 5) as client:
        poll(lambda: [s.value for s in client.query(promql, allow_empty=True)], lambda v: bool(v) and holds(max(v)),
             timeout=timeout, what=f"{promql} to show the fault")
