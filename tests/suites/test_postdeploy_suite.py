"""Post-deploy validation against a real Prometheus scraping the local stack: healthy passes; each metric fault is caught by
its check; a stack nobody uses is INCONCLUSIVE, never a rollback; scrapes and probes never dilute the API's 5xx ratio."""

from __future__ import annotations

import json
from datetime import UTC, datetime
import re
from pathlib import Path
from typing import Any

import pytest

from polycheck.clients.prometheus import PrometheusClient
from polycheck.doubles.promserver import LocalPrometheus
from tests.support.stack_control import StackControl
from tests.support.suite_runner import run_suites
from tests.support.prometheus_wait import until_api_requests, until_query
from tests.support.traffic import API_PATHS, Traffic, probes, shoppers
from tests.support.selftest_env import local_env_text

SUITE = "suites/test_post_deploy.py"


SETTLED = [  # no earlier fault left in the 15 s windows the checks read
    'sum(rate(http_requests_total{status=~"5.."}[15s]))',
    'max(histogram_quantile(0.99, sum by (le, service) (rate(http_request_duration_seconds_bucket[15s]))) > 2.5)',
    'max(max_over_time(db_pool_connections_in_use[15s]) / on(service) db_pool_connections_max > 0.9)',
    'max(kafka_consumergroup_lag > 1000)',
    # a service's series gone from /metrics for a while (an earlier wrong_service_label) and back: increase() spans
    # the gap (range selection skips stale markers), so a window holding samples from before it counts every request
    # made meanwhile; seconds later the same window holds only the few after it (seen: 110 counted by the wait, then
    # 18 by the run's check, INCONCLUSIVE). Settled once the window no longer reaches back past the gap.
    # (it is asked for the eight services' own names: a series under a wrong label that went away is no gap)
    '(count_over_time(sum by (service) (http_requests_total{service=~"%s"})[15s:1s]) < 14)'
    ' and on (service) sum by (service) (http_requests_total{service=~"%s"} offset 15s)' % (("|".join(API_PATHS),) * 2),
]


def settle(prometheus: LocalPrometheus) -> None:
    """Poll until none of the earlier cases' faults is still inside the checks' windows."""
    from polycheck.core.polling import poll
    with PrometheusClient(prometheus.url, 5) as client:
        def dirty() -> list[str]:
            return [q for q in SETTLED if any(s.value > 0 for s in client.query(q, allow_empty=True))]
        poll(dirty, lambda found: not found, timeout=40, what="metric windows clear of earlier faults")


def run(stack: StackControl, env_dir: Path, log: Path) -> Any:
    return run_suites("-m", "postdeploy", SUITE, f"--env-dir={env_dir}", f"--rollback-log={log}", stack_file=stack.stack_file)


ENOUGH = 110  # API requests in the 15 s window: above prometheus.min_observations (100), which is above min_requests


def audit(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_healthy_stack_passes_post_deploy_validation(stack: StackControl, env_dir: Path, tmp_path: Path, prometheus: LocalPrometheus) -> None:
    """With customers' traffic (and the kubelet's probes beside it), every measured value rests on enough requests."""
    settle(prometheus)
    services = stack.stack.info.services
    with shoppers(services), probes(services):
        until_api_requests(prometheus, services, lambda n: n >= ENOUGH, "enough API traffic to every service")
        result = run(stack, env_dir, tmp_path / "log.jsonl")
    assert result.returncode == 0, result.describe()
    assert len(result.ids("passed")) >= 20 and not result.failed and not result.ids("inconclusive"), result.describe()
    assert not audit(tmp_path / "log.jsonl"), audit(tmp_path / "log.jsonl")


def test_a_quiet_stack_is_inconclusive_and_rolls_nothing_back(
    stack: StackControl, env_dir: Path, tmp_path: Path, prometheus: LocalPrometheus
) -> None:
    """Nobody uses the stack (only Prometheus's scrapes and the kubelet's probes reach it): no ratio and no p99 rests on
    enough requests, so they are INCONCLUSIVE with their count (exit 6), never failed, never a rollback."""
    settle(prometheus)
    services = stack.stack.info.services
    with probes(services):
        until_api_requests(prometheus, services, lambda n: n < 3, "no API traffic left in the 15 s windows")
        log = tmp_path / "log.jsonl"
        result = run(stack, env_dir, log)
    assert result.returncode == 6, result.describe()
    assert not result.failed, result.describe()
    judged = {name for name in result.cases if "[error_rate[" in name or "[p99_latency[" in name}
    assert len(judged) == 16 and result.ids("inconclusive") == judged, result.describe()
    for name in judged:
        message = result.cases[name].message
        minimum = "prometheus.min_requests=20" if "error_rate" in name else "prometheus.min_observations=100"
        assert re.search(rf"over \d+ (requests|observations) in the last 15s: fewer than {minimum}", message), message
        assert "this run's own" in message and "count: sum(increase(" in message, message
    records = audit(log)
    assert not [r for r in records if r["step"] == "decision"], records
    assert len({r["check"] for r in records if r["step"] == "escalation"}) <= 1, "one escalation for the run at most"


def test_an_api_error_ratio_is_not_diluted_by_scrapes_and_probes(
    stack: StackControl, env_dir: Path, tmp_path: Path, prometheus: LocalPrometheus
) -> None:
    """8 % of order's API requests answer 500 while Prometheus scrapes it every second and probes hit /health*: counted
    over every request order served that is under 5 %; over its own API traffic it is 8 %, and the check fails."""
    settle(prometheus)
    services = stack.stack.info.services
    stack.set_fault("order", "errors", ratio=0.08, paths=["/api/"])
    with shoppers(services, only=("order",)), probes({"order": services["order"]}):
        until_api_requests(prometheus, ["order"], lambda n: n >= ENOUGH, "enough API traffic to order")
        with PrometheusClient(prometheus.url, 5) as client:  # what the old ratio (every request served) reads
            diluted = client.query('sum(rate(http_requests_total{service="order",status=~"5.."}[15s]))'
                                   ' / sum(rate(http_requests_total{service="order"}[15s]))')[0].value
        log = tmp_path / "log.jsonl"
        result = run(stack, env_dir, log)
    assert diluted < 0.05, f"the scrapes and probes no longer dilute the ratio ({diluted:.3f}): the test proves nothing"
    check = "test_metric_within_runbook_limit[error_rate[order]]"
    assert result.failed == {check}, result.describe()
    message = result.cases[check].message
    assert re.search(r"order 5xx ratio 0\.0[6-9]\d* \([6-9](\.\d+)?%\) over \d+ requests in the last 15s is above 0\.05", message), message
    assert 'route!~"/metrics|/health.*"' in message, message
    assert {r["service"] for r in audit(log) if r["step"] == "decision"} == {"order"}, audit(log)


def test_a_service_prometheus_cannot_scrape_fails_only_its_own_checks(
    stack: StackControl, env_dir: Path, tmp_path: Path, prometheus: LocalPrometheus
) -> None:
    """search is down: Prometheus reads up == 0 for it; its checks fail with that evidence, every other service passes."""
    settle(prometheus)
    stack.set_fault("search", "down")
    until_query(prometheus, 'up{job="search"} == 0', lambda v: v == 0)
    services = stack.stack.info.services
    with shoppers(services):
        until_api_requests(prometheus, set(services) - {"search"}, lambda n: n >= ENOUGH, "enough API traffic")
        result = run(stack, env_dir, tmp_path / "log.jsonl")
    searched = {name for name in result.cases if "[search]]" in name}
    assert searched and result.failed == searched, result.describe()
    assert all("Prometheus cannot scrape search" in result.cases[n].message for n in searched), result.describe()
    assert result.ids("passed") == set(result.cases) - searched, result.describe()


def test_a_hanging_service_fails_only_its_own_checks_without_a_data_wait(
    stack: StackControl, env_dir: Path, tmp_path: Path, prometheus: LocalPrometheus
) -> None:
    """search hangs: the preflight finds it, so its checks fail with that evidence at once (no Prometheus data is waited
    for, whatever its earlier samples say); every other service, with customers' traffic, passes."""
    settle(prometheus)
    services = stack.stack.info.services
    with shoppers(services):
        until_api_requests(prometheus, set(services) - {"search"}, lambda n: n >= ENOUGH, "enough API traffic")
        stack.set_fault("search", "hang")
        result = run(stack, env_dir, tmp_path / "log.jsonl")
        stack.clear()  # before the customers stop: their threads held by the hang are let go
    searched = {name for name in result.cases if "[search]]" in name}
    assert searched and result.failed == searched, result.describe()
    assert all("search is hanging (GET " in result.cases[n].message and "not waited for" in result.cases[n].message
               for n in searched), result.describe()
    assert result.ids("passed") == set(result.cases) - searched, result.describe()


def test_a_service_scraped_without_its_name_fails_its_own_checks_at_once(
    stack: StackControl, env_dir: Path, tmp_path: Path, prometheus: LocalPrometheus
) -> None:
    """search's /metrics labels its samples service="search-service": Prometheus scrapes it (up == 1) but no series
    carries its name; its checks fail with that evidence at once (not after prometheus.data_timeout_seconds, 30 s)."""
    settle(prometheus)
    services = stack.stack.info.services
    stack.set_fault("search", "wrong_service_label")
    until_query(prometheus, 'absent({service="search"})', lambda v: v == 1)
    with shoppers(services):
        until_api_requests(prometheus, set(services) - {"search"}, lambda n: n >= ENOUGH, "enough API traffic")
        result = run(stack, env_dir, tmp_path / "log.jsonl")
    searched = {name for name in result.cases if "[search]]" in name}
    assert searched and result.failed == searched, result.describe()
    for name in searched:
        assert 'no series carries service="search"' in result.cases[name].message, result.describe()
        assert result.cases[name].seconds < 15, f"{name} waited for data: {result.cases[name].seconds:.1f} s"
    assert result.ids("passed") == set(result.cases) - searched, result.describe()


@pytest.mark.parametrize(
    "service, kind, params, expected, evidence, promql, drive",
    [
        ("order", "errors", {"ratio": 0.5, "paths": ["/api/"]}, "error_rate[order]", r"order 5xx ratio .* is above 0\.05",
         'sum(rate(http_requests_total{service="order",status=~"5.."}[15s]))', "/api/orders/x"),
        ("search", "slow", {"seconds": 3.0, "paths": ["/api/search/status"]}, "p99_latency[search]", r"search p99 latency .* is above 2\.5",
         'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{service="search"}[15s]))) > 2.5',
         "/api/search/status"),
        ("order", "db_saturation", {}, "db_pool_saturation[order]", r"order DB pool saturation .* is above 0\.9",
         'db_pool_connections_in_use{service="order"}', ""),
        ("inventory", "consumer_lag", {"lag": 50000}, "kafka_consumer_lag[inventory]", r"inventory Kafka consumer lag .* is above 1000",
         'kafka_consumergroup_lag{consumergroup="inventory-service"}', ""),
        ("product", "ttl_violations", {}, "redis_ttl_violations[product]", r"product Redis TTL violations .* is above 0",
         'redis_ttl_violations_total{service="product"}', "/api/products?limit=5"),
    ],
    ids=["5xx-order", "latency-search", "db-saturation-order", "lag-inventory", "ttl-product"],
)
def test_metric_fault_is_caught_by_its_check_only(
    stack: StackControl, env_dir: Path, tmp_path: Path, prometheus: LocalPrometheus,
    service: str, kind: str, params: dict[str, Any], expected: str, evidence: str, promql: str, drive: str,
) -> None:
    """With customers' traffic to every service, the fault fails its own check (and, when it breaks them too, only other
    checks of the same service: a saturated DB pool answers 503s), and only the culprit is rolled back."""
    settle(prometheus)
    services = stack.stack.info.services
    stack.set_fault(service, kind, **params)
    # the request that shows the fault, sent all through the run (so it stays inside the window the checks read)
    faulted = Traffic({service: services[service] + drive} if drive else {}, per_second=12)
    with shoppers(services), faulted:
        # the faulted service's own traffic may be slowed by its fault (a saturated pool answers after a wait)
        until_api_requests(prometheus, set(services) - {service}, lambda n: n >= ENOUGH, "enough API traffic to the others")
        until_query(prometheus, promql, lambda v: v > 0)
        log = tmp_path / "log.jsonl"
        result = run(stack, env_dir, log)
    check = f"test_metric_within_runbook_limit[{expected}]"
    assert check in result.failed and all(f"[{service}]]" in name for name in result.failed), result.describe()
    message = result.cases[check].message
    assert re.search(evidence, message), message
    assert "query:" in message and "graph:" in message, message
    records = audit(log)
    rollback_triggers = ("error_rate", "p99_latency", "db_pool_saturation")
    rolled = {r["service"] for r in records if r["step"] == "decision"}
    assert rolled == ({service} if any(f"[{key}[" in name for name in result.failed for key in rollback_triggers) else set()), records
    key = expected.split("[")[0]
    section_9 = {"error_rate": "500s spike above threshold", "kafka_consumer_lag": "Kafka lag high"}.get(key)
    if section_9:  # runbook Section 9: escalated at once, naming the culprit
        assert any(r["step"] == "escalation" and r["service"] == service and section_9 in r["detail"] for r in records), records


def test_prometheus_down_is_inconclusive_not_a_failure(stack: StackControl, tmp_path: Path) -> None:
    """A Prometheus that cannot be queried says nothing about the release: INCONCLUSIVE (exit 6), quickly, no rollback."""
    text = local_env_text().replace('[prometheus]\n', '[prometheus]\nurl = "http://127.0.0.1:9"\n')
    (tmp_path / "local.toml").write_text(text)
    log = tmp_path / "log"
    result = run_suites("-m", "postdeploy", SUITE, f"--env-dir={tmp_path}", f"--rollback-log={log}", stack_file=stack.stack_file)
    assert result.returncode == 6, result.describe()
    assert result.cases and result.ids("inconclusive") == set(result.cases), result.describe()
    assert result.seconds < 60, result.describe()
    any_case = next(iter(result.cases.values()))
    assert "127.0.0.1:9" in any_case.message, any_case.message
    records = audit(log)
    assert not [r for r in records if r["step"] == "decision"], records
    assert len({r["check"] for r in records if r["step"] == "escalation"}) == 1, records


def test_a_release_broken_right_before_the_run_is_judged_on_its_own_traffic(
    stack: StackControl, env_dir: Path, tmp_path: Path, prometheus: LocalPrometheus
) -> None:
    """Right after a deploy the window still holds the previous release's healthy traffic, which would dilute the
    new release's 5xx ratio into a GO: the traffic checks judge only the time since the deploy (`--since`, else the
    ReplicaSet's creation), waiting for enough requests there, so search's 30 % of 500s fail error_rate[search]."""
    # a 60 s window: the run judges well within it after the deploy even on a busy machine (with the 15 s one, a run
    # that took 15 s to judge saw a window all of the new release's, and could not show the cut at the deploy)
    text = (env_dir / "local.toml").read_text()
    assert text.count('\nwindow = "15s"') == 1, text
    (env_dir / "local.toml").write_text(text.replace('\nwindow = "15s"', '\nwindow = "60s"'))
    settle(prometheus)
    services = stack.stack.info.services
    search_traffic = Traffic({"search": services["search"] + "/api/search/status"}, per_second=12)
    with shoppers(services), search_traffic:
        until_api_requests(prometheus, services, lambda n: n >= ENOUGH, "a full window of the healthy release's traffic")
        deployed = datetime.now(UTC).replace(microsecond=0)
        stack.set_fault("search", "errors", ratio=0.3, paths=["/api/"])  # the deploy: broken from now on
        log = tmp_path / "log.jsonl"
        result = run_suites("-m", "postdeploy", SUITE, "-k", "search", f"--env-dir={env_dir}", f"--rollback-log={log}",
                            f"--since={deployed.isoformat().replace('+00:00', 'Z')}", "--released=search",
                            stack_file=stack.stack_file)
        since_deploy = datetime.now(UTC).timestamp() - deployed.timestamp()
    check = "test_metric_within_runbook_limit[error_rate[search]]"
    assert check in result.failed, result.describe()
    message = result.cases[check].message
    judged = re.search(r"search 5xx ratio \S+ \(\S+\) over \d+ requests in the last (\d+)s is above 0\.05", message)
    # since the deploy, not the whole 60 s window (whole seconds, rounded up)
    assert judged and int(judged.group(1)) <= since_deploy + 1 and since_deploy < 60, (message, since_deploy)
    assert {r["service"] for r in audit(log) if r["step"] == "decision"} == {"search"}, audit(log)
