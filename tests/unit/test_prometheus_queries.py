"""The client and the runbook's checks against a REAL Prometheus scraping a tiny exposition server.

The exposition server exports the PolyShop metric families (polyshop-api.md, Metrics) with values that are
exact functions of time, so rates, ratios and quantiles have known answers: order answers 10 req/s of which
1 is a 500 (ratio 0.1), 95% of its requests take 50-100 ms and 5% take 2.5-5 s (p99 = 4.5 s), and so on.
One Prometheus serves the whole module; every test polls, none sleeps.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from polycheck.clients import promql
from polycheck.core.polling import poll
from polycheck.clients.prometheus import NoDataError, PrometheusClient, PrometheusQueryError
from polycheck.doubles.promserver import LocalPrometheus, wait_for_data

pytestmark = pytest.mark.skipif(LocalPrometheus.available() is not None,
                                reason=f"real Prometheus needed: {LocalPrometheus.available()}")

FIRST_DATA_TIMEOUT = 20.0
BUCKETS = ("0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf")


class PolyShopTraffic:
    """A collector whose counters grow at fixed rates with the clock (scraped values give exact rates)."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def collect(self) -> Iterator[object]:
        t = time.monotonic() - self.started + 100.0  # away from 0, so no counter-start extrapolation applies
        requests = CounterMetricFamily("http_requests", "HTTP requests served.",
                                       labels=["service", "route", "method", "status"])
        requests.add_metric(["order", "/api/orders", "POST", "201"], 9 * t)
        requests.add_metric(["order", "/api/orders", "POST", "500"], 1 * t)
        requests.add_metric(["search", "/api/search", "GET", "200"], 5 * t)  # never a 5xx: no 5xx series at all
        requests.add_metric(["payment", "/api/payments", "POST", "201"], 42)  # no traffic: rate 0
        yield requests
        duration = HistogramMetricFamily("http_request_duration_seconds", "Time to answer.", labels=["service", "route"])
        order = [0, 95, 95, 95, 95, 95, 100, 100, 100]  # per second: 95 in (0.05, 0.1], 5 in (2.5, 5]
        search = [0, 50, 50, 50, 50, 50, 50, 50, 50]
        duration.add_metric(["order", "/api/orders"], [(le, n * t) for le, n in zip(BUCKETS, order)], 20 * t)
        duration.add_metric(["search", "/api/search"], [(le, n * t) for le, n in zip(BUCKETS, search)], 4 * t)
        yield duration
        in_use = GaugeMetricFamily("db_pool_connections_in_use", "In use.", labels=["service"])
        in_use.add_metric(["order"], 19)
        in_use.add_metric(["inventory"], 3)
        yield in_use
        pool = GaugeMetricFamily("db_pool_connections_max", "Pool size.", labels=["service"])
        pool.add_metric(["order"], 20)
        pool.add_metric(["inventory"], 20)
        yield pool
        lag = GaugeMetricFamily("kafka_consumergroup_lag", "Lag.", labels=["consumergroup", "topic", "partition"])
        lag.add_metric(["order-service", "payments", "0"], 700)
        lag.add_metric(["order-service", "payments", "1"], 500)
        lag.add_metric(["inventory-service", "orders", "0"], 5)
        yield lag
        ttl = CounterMetricFamily("redis_ttl_violations", "Reads past TTL.", labels=["service"])
        ttl.add_metric(["product"], 3)
        yield ttl


@dataclass
class Shop:
    prometheus: LocalPrometheus
    client: PrometheusClient
    consumer_errors: Counter
    started_at: float  # epoch seconds, standing in for the deploy time
    first_rate_seconds: float


@pytest.fixture(scope="module")
def shop() -> Iterator[Shop]:
    registry = CollectorRegistry()
    registry.register(PolyShopTraffic())  # type: ignore[arg-type]
    consumer_errors = Counter("kafka_consumer_errors", "Consumer errors.", ("service", "topic"), registry=registry)
    consumer_errors.labels("inventory", "orders")
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    started, started_at = time.monotonic(), time.time()
    prometheus = LocalPrometheus.start({"shop": f"http://127.0.0.1:{server.server_address[1]}"})
    client = prometheus.client(timeout_seconds=2.0)
    try:
        wait_for_data(client, 'rate(http_requests_total{service="order"}[10s])', FIRST_DATA_TIMEOUT)
        yield Shop(prometheus, client, consumer_errors.labels("inventory", "orders"), started_at,
                   time.monotonic() - started)
    finally:
        client.close()
        prometheus.stop()
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_counter_rate(shop: Shop) -> None:
    """rate() divides by the whole range: it reads low until scrapes cover the range, then reads true."""
    query = 'rate(http_requests_total{service="order",status="201"}[3s])'
    [sample] = poll(lambda: shop.client.query(query), lambda s: s[0].value == pytest.approx(9.0, rel=0.05),
                    timeout=10, what="the order 201 rate to read 9/s", describe=lambda s: str(s[0]))
    assert sample.labels["route"] == "/api/orders"


def test_the_services_own_service_label_survives_the_scrape(shop: Shop) -> None:
    samples = shop.client.query('http_requests_total{status="500"}')
    assert [(s.labels["service"], s.labels["job"]) for s in samples] == [("order", "shop")]


def test_error_ratio_over_5_percent_is_a_rollback_trigger(shop: Shop) -> None:
    verdict = promql.ERROR_RATE.evaluate(shop.client, "order", window="10s", minimum=10)
    assert verdict.violated and verdict.value == pytest.approx(0.1, rel=1e-6)
    assert verdict.evidence is not None and verdict.evidence >= 10
    assert re.match(r"order 5xx ratio 0\.1 \(10%\) over \d+ requests in the last 10s is above 0\.05 \(5%\) \(runbook "
                    r"Section 4", verdict.message), verdict.message


def test_a_service_that_never_answered_5xx_has_ratio_zero_not_no_data(shop: Shop) -> None:
    verdict = promql.ERROR_RATE.evaluate(shop.client, "search", window="10s", minimum=5)
    assert verdict.passed and verdict.value == 0.0


def test_no_traffic_makes_the_ratio_nan_which_is_not_a_pass(shop: Shop) -> None:
    """0/0 rests on no request at all: too little evidence (inconclusive, with the count), never a pass."""
    verdict = promql.ERROR_RATE.evaluate(shop.client, "payment", window="10s")
    assert (verdict.passed, verdict.outcome, verdict.evidence) == (False, "too little evidence", 0.0)
    assert "payment 5xx ratio not measurable (0/0) over 0 requests in the last 10s: fewer than prometheus.min_requests=20" \
        in verdict.message, verdict.message
    uncounted = dataclasses.replace(promql.ERROR_RATE, evidence=None)  # a check without a count: NaN, no traffic
    assert (uncounted.evaluate(shop.client, "payment", window="10s").outcome) == "no traffic"
    assert uncounted.evaluate(shop.client, "payment", window="10s", absent_ok=True).passed


def test_p99_latency_from_the_histogram(shop: Shop) -> None:
    slow = promql.P99.evaluate(shop.client, "order", window="10s", minimum=20)
    assert slow.violated and slow.value == pytest.approx(4.5, rel=1e-6)
    fast = promql.P99.evaluate(shop.client, "search", window="10s", minimum=5)
    assert fast.passed and fast.value == pytest.approx(0.0995, rel=1e-6)


def test_db_pool_saturation_and_kafka_lag(shop: Shop) -> None:
    assert promql.DB_POOL.evaluate(shop.client, "order", window="10s").value == pytest.approx(0.95)
    assert promql.DB_POOL.evaluate(shop.client, "order", window="10s").violated
    assert promql.DB_POOL.evaluate(shop.client, "inventory", window="10s").passed
    lag = promql.KAFKA_LAG.evaluate(shop.client, "order")
    assert lag.violated and lag.value == 1200
    assert promql.KAFKA_LAG.evaluate(shop.client, "inventory").passed


def test_redis_ttl_violations_since_the_deploy(shop: Shop) -> None:
    verdict = promql.REDIS_TTL.evaluate(shop.client, "product", deployed_at=shop.started_at - 65)
    assert verdict.passed and verdict.value == 0
    assert "[1m" in verdict.query, "a compound range such as 1m12s is valid PromQL"


def test_consumer_errors_are_seen_once_they_happen(shop: Shop) -> None:
    assert promql.KAFKA_ERRORS.evaluate(shop.client, "inventory", window="1m").passed
    shop.consumer_errors.inc(3)
    verdict = poll(lambda: promql.KAFKA_ERRORS.evaluate(shop.client, "inventory", window="1m"),
                   lambda v: v.violated and (v.value or 0) >= 3, timeout=10, what="consumer errors in Prometheus",
                   describe=lambda v: v.message)
    assert "inventory Kafka consumer errors" in verdict.message and "is above 0" in verdict.message


def test_a_series_that_does_not_exist_is_no_data(shop: Shop) -> None:
    query = 'rate(http_requests_total{service="no-such-service"}[10s])'
    with pytest.raises(NoDataError, match=r"no data for rate\(http_requests_total\{service=\"no-such-service\"\}"):
        shop.client.query(query)
    assert shop.client.query(query, allow_empty=True) == []


def test_bad_promql_is_a_query_error_with_prometheus_reason(shop: Shop) -> None:
    with pytest.raises(PrometheusQueryError) as caught:
        shop.client.query("sum(rate(http_requests_total[1m])")
    assert caught.value.error_type == "bad_data" and "parse error" in caught.value.error
    assert "query: sum(rate(http_requests_total[1m])" in str(caught.value)


def test_query_range(shop: Shop) -> None:
    query = promql.ERROR_RATE.query("order", window="10s")

    def last_3_seconds() -> tuple[float, list]:
        now = time.time()
        return now, shop.client.query_range(query, now - 2, now, 1)

    now, [series] = poll(last_3_seconds, lambda got: len(got[1][0].points) == 3, timeout=5,
                         what="3 points of the order 5xx ratio", describe=lambda got: str(got[1][0]))
    assert series.values == pytest.approx([0.1, 0.1, 0.1], rel=1e-6)
    assert [t for t, _ in series.points] == pytest.approx([now - 2, now - 1, now], abs=0.01)


def test_wait_for_data_gives_up_with_no_data_at_its_deadline(shop: Shop) -> None:
    started = time.monotonic()
    with pytest.raises(NoDataError, match=r"first data for absent_metric: not reached within 0.5 s .*no series yet"):
        wait_for_data(shop.client, "absent_metric", 0.5)
    assert time.monotonic() - started < 2.0


def test_graph_link_opens_on_the_real_prometheus(shop: Shop) -> None:
    link = shop.client.graph_link(promql.ERROR_RATE.query("order", window="1m"), "1h")
    assert urlsplit(link).netloc == urlsplit(shop.prometheus.url).netloc
    page = httpx.get(link, timeout=2.0, follow_redirects=True)  # Debian's build redirects to its classic UI
    assert page.status_code == 200 and "Prometheus" in page.text


def test_first_rate_arrives_within_the_measured_startup(shop: Shop) -> None:
    assert shop.prometheus.ready_seconds < 5.0
    assert not math.isnan(shop.first_rate_seconds) and shop.first_rate_seconds < FIRST_DATA_TIMEOUT
