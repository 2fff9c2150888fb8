"""Enough evidence, or none: a service that cannot give data ends its checks at once; a canary judged on too few
requests is inconclusive and aborts nothing (README "Evidence rules")."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import httpx
import pytest

from polycheck.checks.canary import CanaryPods, judge_canary, request_count
from polycheck.checks.postdeploy import DataReadiness, down_query, judged_window
from polycheck.clients.prometheus import PrometheusClient
from polycheck.core.attribution import ServiceBoard
from polycheck.core.failures import CheckFailure, culprits_of, is_inconclusive


def fake_prometheus(answer: Callable[[str], list[tuple[dict[str, str], str]]], asked: list[str] | None = None) -> PrometheusClient:
    """A client over a fake Prometheus whose answer to each query is `answer(query)`."""

    def handle(request: httpx.Request) -> httpx.Response:
        query = request.url.params.get("query", "")
        if asked is not None:
            asked.append(query)
        result = [{"metric": labels, "value": [1700000000, value]} for labels, value in answer(query)]
        return httpx.Response(200, json={"status": "success", "data": {"resultType": "vector", "result": result}})

    return PrometheusClient("http://prom.test:9090", 1.0, transport=httpx.MockTransport(handle))


def scraped(up: str | None, series: str | None, rate: bool,
            down: str = "0") -> Callable[[str], list[tuple[dict[str, str], str]]]:
    """`down`: the down query's answer (`up`'s largest value throughout down_for)."""
    def answer(query: str) -> list[tuple[dict[str, str], str]]:
        if query.startswith("max_over_time((min(up"):
            return [({}, down)]
        if query.startswith("min(up"):
            return [] if up is None else [({}, up)]
        if query.startswith("count("):
            return [] if series is None else [({}, series)]
        return [({}, "1.5")] if rate else []
    return answer


def readiness(answer: Callable[[str], list[tuple[dict[str, str], str]]], board: ServiceBoard | None = None,
              asked: list[str] | None = None) -> DataReadiness:
    return DataReadiness(fake_prometheus(answer, asked), "15s", 30.0, board=board)


def failure_of(ready: DataReadiness, service: str = "search") -> tuple[CheckFailure, float]:
    started = time.monotonic()
    with pytest.raises(CheckFailure) as caught:
        ready.require(service, f"{service}-service")
    return caught.value, time.monotonic() - started


def test_a_service_known_to_hang_fails_at_once_without_asking_prometheus() -> None:
    board = ServiceBoard()
    board.mark_hanging("search", "GET http://search/health/live accepted the connection but sent no answer (preflight)")
    asked: list[str] = []
    failure, seconds = failure_of(readiness(scraped("1", "12", True), board, asked))
    assert culprits_of(failure) == ("search",) and not is_inconclusive(failure)
    assert "search is hanging (GET http://search/health/live" in str(failure) and "not waited for" in str(failure)
    assert asked == [] and seconds < 1


def test_a_target_prometheus_cannot_scrape_fails_at_once() -> None:
    """Every scrape of the last down_for failed (the down query reads 0): down, whatever rate earlier samples give."""
    asked: list[str] = []
    failure, seconds = failure_of(readiness(scraped("0", "12", True), asked=asked))
    assert culprits_of(failure) == ("search",) and "Prometheus cannot scrape search" in str(failure)
    assert "0 throughout the last 30s" in str(failure) and "max_over_time((min(up{" in str(failure), str(failure)
    assert 'max_over_time((min(up{job=~"(.*/)?(search|search-service)"}))[30s:1s])' in asked, asked
    assert seconds < 1, "no data wait"


def sequence(*answers: Callable[[str], list[tuple[dict[str, str], str]]]) -> Callable[[str], list[tuple[dict[str, str], str]]]:
    """Each look (one rate query opens it) answered by the next of `answers`; the last one from then on."""
    looks = [-1]

    def answer(query: str) -> list[tuple[dict[str, str], str]]:
        if query.startswith("sum(rate("):
            looks[0] += 1
        return answers[min(looks[0], len(answers) - 1)](query)
    return answer


def test_one_failed_scrape_is_waited_out_not_taken_for_a_service_down() -> None:
    """up 0 now but not throughout down_for (a scrape failed between good ones): the next look, up 1 again, settles."""
    asked: list[str] = []
    ready = readiness(sequence(scraped("0", "12", True, down="1"), scraped("1", "12", True)), asked=asked)
    ready.require("search", "search-service")  # no failure
    assert sum(q.startswith("max_over_time(") for q in asked) == 1, asked  # asked at the failing look only
    assert sum(q.startswith("sum(rate(") for q in asked) == 2, asked


def test_a_target_failing_since_recently_fails_once_down_for_has_passed() -> None:
    answers = sequence(scraped("0", "12", True, down="1"), scraped("0", "12", True, down="1"),
                       scraped("0", "12", True, down="0"))
    failure, _ = failure_of(readiness(answers))
    assert culprits_of(failure) == ("search",) and "0 throughout the last 30s" in str(failure), str(failure)


def test_scrapes_failing_on_and_off_until_the_wait_ends_are_inconclusive() -> None:
    """up 0 at the end of the data wait, never throughout down_for: neither down nor judged on stale data."""
    ready = DataReadiness(fake_prometheus(scraped("0", "12", True, down="1")), "15s", 0.6)
    with pytest.raises(CheckFailure) as caught:
        ready.require("search", "search-service")
    assert is_inconclusive(caught.value), str(caught.value)
    assert "failed its last scrape of search" in str(caught.value) and "not every scrape of the last 30s" in str(caught.value)


def test_the_down_query_holds_the_up_query_over_down_for() -> None:
    assert down_query('min(up{job="x"})', "30s") == 'max_over_time((min(up{job="x"}))[30s:1s])'
    assert down_query('min(up{job="x"})', "3s") == 'max_over_time((min(up{job="x"}))[3s:1s])'
    assert down_query("up", "2m") == "max_over_time((up)[2m:4s])"  # 30 points at most


def test_a_target_up_that_exports_no_series_under_its_name_fails_at_once() -> None:
    """A wrong `service` label: the scrape works, nothing carries the name; waiting would never help."""
    failure, seconds = failure_of(readiness(scraped("1", None, False)))
    assert culprits_of(failure) == ("search",) and seconds < 1
    assert 'no series carries service="search"' in str(failure) and "count({service=\"search\"})" in str(failure)


def test_a_service_with_data_is_ready_and_asked_once() -> None:
    asked: list[str] = []
    ready = readiness(scraped("1", "12", True), asked=asked)
    ready.require("search", "search-service")
    ready.require("search", "search-service")
    assert len(asked) == 3, asked  # one look (rate, up, series), then remembered


def test_no_up_series_yet_is_waited_for_until_the_deadline_only() -> None:
    ready = DataReadiness(fake_prometheus(scraped(None, None, False)), "15s", 0.6)
    started = time.monotonic()
    ready.require("search", "search-service")  # returns at the deadline: the check then judges what there is
    assert 0.5 <= time.monotonic() - started < 3


# -- the canary gate ------------------------------------------------------------------------------------------------

PODS = CanaryPods("stable1", "canary1", 20)


def canary_answer(canary_count: str, stable_count: str, canary_ratio: str = "0", stable_ratio: str = "0"):
    def answer(query: str) -> list[tuple[dict[str, str], str]]:
        hash_ = "canary1" if '"canary1"' in query else "stable1"
        if query.startswith("sum(increase("):
            return [({}, canary_count if hash_ == "canary1" else stable_count)]
        return [({}, canary_ratio if hash_ == "canary1" else stable_ratio)]
    return answer


def judge(answer: Callable[[str], list[tuple[dict[str, str], str]]]):
    return judge_canary(fake_prometheus(answer), "payment", PODS, label="rollouts_pod_template_hash", window="1m",
                        min_requests=50)


def test_a_canary_judged_on_too_few_requests_is_inconclusive_and_blames_nothing() -> None:
    with pytest.raises(CheckFailure) as caught:
        judge(canary_answer("12", "400", canary_ratio="0.25"))  # 3 of 12 would be 25%: too few to abort on
    assert is_inconclusive(caught.value) and not culprits_of(caught.value)
    message = str(caught.value)
    assert "over 12 requests in the last 1m: fewer than canary.min_requests=50 requests — inconclusive" in message, message
    assert "nothing is aborted on it" in message


def test_a_canary_with_enough_requests_is_judged_and_a_stable_with_too_few_of_its_own_is_inconclusive() -> None:
    with pytest.raises(CheckFailure) as caught:
        judge(canary_answer("120", "400", canary_ratio="0.05"))
    assert culprits_of(caught.value) == ("payment",) and "over 120 requests" in str(caught.value)
    with pytest.raises(CheckFailure) as few:  # a stable with 10 requests is no baseline: nothing to compare with
        judge(canary_answer("120", "10", canary_ratio="0.015", stable_ratio="0"))
    assert few.value.inconclusive and "cannot be compared with the stable version" in str(few.value)
    assert "over 10 requests" in str(few.value) and "fewer than canary.min_requests=50" in str(few.value)
    # at 100 % all traffic is the canary's: there is no stable to compare with, and the fixed limit alone decides
    full = CanaryPods("stable1", "canary1", 100)
    canary, stable = judge_canary(fake_prometheus(canary_answer("120", "0", canary_ratio="0.015")), "payment", full,
                                  label="rollouts_pod_template_hash", window="1m", min_requests=50)
    assert canary.passed and stable.too_little_evidence
    with pytest.raises(CheckFailure) as erring:
        judge_canary(fake_prometheus(canary_answer("120", "0", canary_ratio="0.05")), "payment", full,
                     label="rollouts_pod_template_hash", window="1m", min_requests=50)
    assert culprits_of(erring.value) == ("payment",) and not erring.value.inconclusive


def test_the_canary_count_leaves_scrapes_and_probes_out() -> None:
    evidence = request_count("payment", "rollouts_pod_template_hash", "canary1", "1m", 50)
    assert evidence.query == ('sum(increase(http_requests_total{service="payment",rollouts_pod_template_hash="canary1",'
                              'route!~"/metrics|/health.*"}[1m]))')
    assert evidence.setting == "canary.min_requests"


def test_the_traffic_checks_judge_only_the_time_since_a_deploy_more_recent_than_the_window() -> None:
    assert judged_window("15s", None) == "15s"  # the deploy time unknown: the window
    assert judged_window("15s", 1000.0, now=1100.0) == "15s"  # deployed before the window began
    assert judged_window("5m", 1000.0, now=1042.3) == "43s"  # whole seconds, rounded up
    assert judged_window("15s", 1000.0, now=1000.2) == "1s"  # never an empty range


def test_a_recent_deploy_waits_for_enough_requests_since_it_counted_over_that_span() -> None:
    """Deployed 4 s ago with a 15 s window: the wait counts API requests over the last 4-5 s (not 15 s), until the
    minimum is there; an old deploy does not wait for requests at all (nobody's traffic is promised)."""
    asked: list[str] = []
    counts = iter(["3", "40", "120"])

    def answer(query: str) -> list[tuple[dict[str, str], str]]:
        if query.startswith("sum(increase(http_requests_total"):
            return [({}, next(counts))]
        return scraped("1", "12", True)(query)

    ready = DataReadiness(fake_prometheus(answer, asked), "15s", 10.0, recent_requests=100)
    ready.require("search", "search-service", deployed_at=time.time() - 4)
    counted = [q for q in asked if q.startswith("sum(increase(http_requests_total")]
    assert len(counted) == 3, asked  # waited until 120 >= 100
    assert all(re.search(r"\[[4-9]s\]", q) for q in counted), counted
    asked.clear()
    old = DataReadiness(fake_prometheus(answer, asked), "15s", 10.0, recent_requests=100)
    old.require("search", "search-service", deployed_at=time.time() - 60)
    assert not [q for q in asked if q.startswith("sum(increase(http_requests_total")], asked
