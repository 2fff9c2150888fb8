"""Exposition parsing: families by their PromQL names, labels, and clear errors on malformed text."""

from __future__ import annotations

import pytest

from polycheck.core.exposition import ExpositionError, parse_exposition

TEXT = """# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{service="order",route="/health",method="GET",status="200"} 3
# HELP http_request_duration_seconds Latency.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{service="order",route="/health",le="0.1"} 3
http_request_duration_seconds_bucket{service="order",route="/health",le="+Inf"} 3
http_request_duration_seconds_sum{service="order",route="/health"} 0.01
http_request_duration_seconds_count{service="order",route="/health"} 3
# TYPE db_pool_connections_max gauge
db_pool_connections_max{service="order"} 20
"""


def test_families_are_named_as_promql_sees_them() -> None:
    exposition = parse_exposition(TEXT)
    assert exposition.families == {
        "http_requests_total": "counter",
        "http_request_duration_seconds": "histogram",
        "db_pool_connections_max": "gauge",
    }
    assert exposition.label_values("http_requests_total", "service") == {"order"}


def test_missing_family_is_absent() -> None:
    assert not parse_exposition(TEXT).has("kafka_consumergroup_lag")


def test_malformed_text_raises_with_reason() -> None:
    with pytest.raises(ExpositionError):
        parse_exposition("<html>oops</html>\n")
