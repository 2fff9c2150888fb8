"""A service down, or one failed scrape: against a REAL Prometheus scraping two tiny targets every second.

One failed scrape between good ones (a scrape timing out under load) is not a service down: the post-deploy checks
of that service go on to judge its data. A target whose every scrape fails for `down_for` is down, and its checks
fail with that evidence (README "Post-deploy validation").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from polycheck.checks.postdeploy import UP_QUERY, DataReadiness, down_query
from polycheck.clients.prometheus import PrometheusClient
from polycheck.clients.promql import render
from polycheck.core.failures import CheckFailure, culprits_of, is_inconclusive
from polycheck.core.polling import poll
from polycheck.doubles.promserver import LocalPrometheus, wait_for_data

pytestmark = pytest.mark.skipif(LocalPrometheus.available() is not None,
                                reason=f"real Prometheus needed: {LocalPrometheus.available()}")

DOWN_FOR = "3s"  # three 1 s scrapes


class Target:
    """A /metrics of one service whose scrapes can be made to fail: the next one only, or all until told."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.fail_next = 0
        self.failing = False
        self.failed = 0
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if target.should_fail():
                    self.send_error(500, "scrape made to fail")
                    return
                served = int((time.monotonic() - target.started) * 10) + 100
                body = (f'http_requests_total{{service="{target.service}",route="/api/x",method="GET",status="200"}} '
                        f"{served}\n").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def should_fail(self) -> bool:
        with self.lock:
            if self.fail_next > 0 or self.failing:
                self.fail_next = max(0, self.fail_next - 1)
                self.failed += 1
                return True
            return False

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@dataclass
class Scraped:
    prometheus: LocalPrometheus
    client: PrometheusClient
    targets: dict[str, Target]


@pytest.fixture(scope="module")
def scraped() -> Iterator[Scraped]:
    targets = {name: Target(name) for name in ("search", "payment")}
    prometheus = LocalPrometheus.start({name: t.url for name, t in targets.items()})
    client = prometheus.client(timeout_seconds=2.0)
    try:
        for name in targets:
            wait_for_data(client, f'rate(http_requests_total{{service="{name}"}}[5s])', 20.0)
        yield Scraped(prometheus, client, targets)
    finally:
        client.close()
        prometheus.stop()
        for target in targets.values():
            target.close()


def up_of(scraped: Scraped, service: str) -> float | None:
    samples = scraped.client.query(f'up{{job="{service}"}}', allow_empty=True)
    return samples[0].value if samples else None


def readiness(scraped: Scraped) -> DataReadiness:
    return DataReadiness(scraped.client, "5s", 15.0, down_for=DOWN_FOR)


def test_one_failed_scrape_is_not_a_service_down(scraped: Scraped) -> None:
    search = scraped.targets["search"]
    with search.lock:
        search.fail_next = 1
    poll(lambda: up_of(scraped, "search"), lambda up: up == 0, timeout=10, what="the failed scrape of search in up")
    down = down_query(render(UP_QUERY, service="search", deployment="search-service"), DOWN_FOR)
    [held] = scraped.client.query(down)
    assert held.value == 1, f"{down} is {held.value} after one failed scrape: Prometheus's good scrapes are not in it"
    readiness(scraped).require("search", "search-service")  # no failure: its data is judged
    assert search.failed == 1, f"{search.failed} scrapes of search failed; the test made exactly one fail"


def test_a_target_whose_scrapes_all_fail_for_down_for_fails_its_checks(scraped: Scraped) -> None:
    payment = scraped.targets["payment"]
    with payment.lock:
        payment.failing = True
    try:
        poll(lambda: up_of(scraped, "payment"), lambda up: up == 0, timeout=10, what="payment's failing scrapes in up")
        first_zero = time.monotonic()
        with pytest.raises(CheckFailure) as caught:
            readiness(scraped).require("payment", "payment-service")
        waited = time.monotonic() - first_zero
    finally:
        with payment.lock:
            payment.failing = False
    failure = caught.value
    assert culprits_of(failure) == ("payment",) and not is_inconclusive(failure), str(failure)
    assert "Prometheus cannot scrape payment" in str(failure) and "throughout the last 3s" in str(failure), str(failure)
    # down_for's points are whole seconds: the earliest verdict is 2 s after the first failed scrape, which this test
    # sees up to one poll interval (1 s) late
    assert waited >= 1.0, f"failed {waited:.2f}s after the first failed scrape was seen: before up was 0 for {DOWN_FOR}"
    assert payment.failed >= 3, f"only {payment.failed} failed scrapes behind a 'down' verdict"
