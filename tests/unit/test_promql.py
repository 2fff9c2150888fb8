"""The runbook's PromQL templates and the evaluator's rules: no data, no traffic (NaN), +Inf, worst series."""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime, timedelta, UTC

import httpx
import pytest

from polycheck.clients import promql
from polycheck.clients.prometheus import PrometheusClient, PrometheusQueryError, PrometheusUnavailable
from polycheck.clients.promql import Check, evaluate, render, since_deploy
from polycheck.core.failures import culprits_of, is_inconclusive


def prometheus_answering(*values: tuple[dict[str, str], str] | None, status: int = 200, body: dict | None = None,
                         grafana: str = "", counted: str | None = "1000") -> PrometheusClient:
    """A client over a fake Prometheus answering every query with these samples (None: a scalar NaN), but the
    evidence counts (`increase(..._count` / `increase(http_requests_total`) with `counted` (None: no series)."""

    def handle(request: httpx.Request) -> httpx.Response:
        if body is not None:
            return httpx.Response(status, json=body)
        query = request.url.params.get("query", "")
        if query.startswith("sum(increase(http_"):
            result = [] if counted is None else [{"metric": {}, "value": [1700000000, counted]}]
            return httpx.Response(200, json={"status": "success", "data": {"resultType": "vector", "result": result}})
        if values == (None,):
            return httpx.Response(200, json={"status": "success",
                                             "data": {"resultType": "scalar", "result": [1700000000, "NaN"]}})
        result = [{"metric": labels, "value": [1700000000, value]} for labels, value in values]  # type: ignore[misc]
        return httpx.Response(200, json={"status": "success", "data": {"resultType": "vector", "result": result}})

    return PrometheusClient("http://prom.test:9090", 1.0, grafana, transport=httpx.MockTransport(handle))


# -- templates -------------------------------------------------------------------------------------


def test_error_ratio_template_renders_the_runbook_query() -> None:
    """The ratio is over the service's own API traffic: Prometheus's scrapes and the kubelet's probes left out."""
    assert promql.ERROR_RATE.query("order", window="1m") == (
        '(sum(rate(http_requests_total{service="order",route!~"/metrics|/health.*",status=~"5.."}[1m])) or vector(0))'
        ' / sum(rate(http_requests_total{service="order",route!~"/metrics|/health.*"}[1m]))'
    )


def test_p99_latency_template_uses_the_histogram_buckets_summed_by_le() -> None:
    assert promql.P99.query("payment", window=300) == (
        'histogram_quantile(0.99, sum by (le) '
        '(rate(http_request_duration_seconds_bucket{service="payment",route!~"/metrics|/health.*"}[5m])))'
    )


def test_excluded_routes_are_configurable_and_may_be_none() -> None:
    assert 'route!~"/internal/.*"' in promql.ERROR_RATE.query("order", window="1m", exclude_routes=["/internal/.*"])
    assert 'route=~".*"' in promql.P99.query("order", window="1m", exclude_routes=[]), "nothing left out keeps every series"
    with pytest.raises(ValueError, match="without quotes"):
        promql.api_routes(['/x"}'])


def test_db_pool_kafka_and_redis_templates() -> None:
    assert promql.DB_POOL.query("order", window="2m") == (
        'max(max_over_time(db_pool_connections_in_use{service="order"}[2m])'
        ' / db_pool_connections_max{service="order"})'
    )
    assert promql.KAFKA_LAG.query("inventory") == (
        'max(sum by (topic) (kafka_consumergroup_lag{consumergroup="inventory-service"}))'
    ), "the consumer group is named after the Deployment"
    assert 'consumergroup="inv-blue"' in promql.KAFKA_LAG.query("inventory", deployment="inv-blue")
    assert promql.KAFKA_ERRORS.query("inventory", window="5m") == (
        'sum(increase(kafka_consumer_errors_total{service="inventory"}[5m]))'
    )
    assert promql.REDIS_TTL.query("product", since="12m5s") == (
        'sum(increase(redis_ttl_violations_total{service="product"}[12m5s]))'
    )


def test_render_refuses_missing_or_unsafe_values() -> None:
    with pytest.raises(ValueError, match=r"uses \{since\} but no since was given"):
        render(promql.REDIS_TTL_VIOLATIONS, service="product")
    with pytest.raises(ValueError, match="is not a plain name"):
        render(promql.ERROR_RATIO, service='order"} or vector(1) #', window="1m")
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        render(promql.ERROR_RATIO, service="order", window="5 minutes")
    assert promql.placeholders(promql.REDIS_TTL_VIOLATIONS) == {"service", "since"}


def test_since_deploy_is_rounded_up_to_whole_seconds() -> None:
    deployed = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert since_deploy(deployed, deployed + timedelta(minutes=12, seconds=4, milliseconds=10)) == "12m5s"
    with pytest.raises(ValueError, match="is not before"):
        since_deploy(deployed, deployed)


def test_every_check_names_its_runbook_line() -> None:
    assert set(promql.CHECKS) >= {"error_rate", "canary_error_rate", "p99_latency", "db_pool_saturation",
                                  "kafka_consumer_errors", "kafka_consumer_lag", "redis_ttl_violations"}
    assert (promql.ERROR_RATE.threshold, promql.CANARY_ERROR_RATE.threshold, promql.P99.threshold) == (0.05, 0.02, 2.5)
    assert all("runbook Section" in check.rule for check in promql.ROLLBACK_TRIGGERS + promql.POST_DEPLOY_VALIDATIONS)


# -- the evaluator ---------------------------------------------------------------------------------


def test_a_broken_limit_says_check_value_window_limit_rule_query_and_graph() -> None:
    client = prometheus_answering(({}, "0.104"))
    verdict = promql.ERROR_RATE.evaluate(client, "order", window="1m")
    assert (verdict.passed, verdict.outcome, verdict.violated, verdict.value) == (False, "violated", True, 0.104)
    assert verdict.message.startswith(
        "order 5xx ratio 0.104 (10.4%) over 1000 requests in the last 1m is above 0.05 (5%) (runbook Section 4 rollback trigger"
    )
    assert f"— query: {verdict.query} — graph: http://prom.test:9090/graph?g0.expr=" in verdict.message
    assert verdict.link in verdict.message


def test_a_value_within_the_limit_passes() -> None:
    verdict = promql.P99.evaluate(prometheus_answering(({}, "0.31")), "search", window="5m")
    assert verdict.passed and verdict.outcome == "ok" and not verdict.violated
    assert verdict.message.startswith("search p99 latency 0.31s over 1000 observations in the last 5m is not above 2.5s")
    verdict.require()  # does not fail


def test_no_series_is_not_a_pass_unless_absence_is_fine() -> None:
    verdict = promql.KAFKA_ERRORS.evaluate(prometheus_answering(), "inventory", window="5m")
    assert (verdict.passed, verdict.outcome, verdict.value, verdict.violated) == (False, "no data", None, False)
    assert "has no data" in verdict.message and "not a pass" in verdict.message
    allowed = promql.KAFKA_ERRORS.evaluate(prometheus_answering(), "inventory", absent_ok=True)
    assert allowed.passed and allowed.outcome == "no data" and "allowed for this check (absent_ok)" in allowed.message


def test_nan_means_no_traffic_which_is_not_a_pass_for_an_error_rate() -> None:
    check = dataclasses.replace(promql.ERROR_RATE, evidence=None)  # the rule without a count
    verdict = check.evaluate(prometheus_answering(({}, "NaN")), "payment", window="1m")
    assert (verdict.passed, verdict.outcome, verdict.violated) == (False, "no traffic", False)
    assert math.isnan(verdict.value)  # type: ignore[arg-type]
    assert "payment 5xx ratio over the last 1m is NaN (0/0: nothing was counted" in verdict.message
    assert evaluate(prometheus_answering(None), "x", "0/0", 0.05, ">", absent_ok=True).passed


def test_plus_inf_latency_breaks_the_limit_and_says_why() -> None:
    verdict = promql.P99.evaluate(prometheus_answering(({}, "+Inf")), "order", window="5m")
    assert verdict.violated and verdict.value == math.inf
    assert "order p99 latency +Inf (+Inf: above the histogram's largest finite bucket) over 1000 observations in the last " \
        "5m is above 2.5s" \
        in verdict.message


def test_the_worst_series_is_judged_and_named() -> None:
    client = prometheus_answering(({"pod": "a"}, "0.2"), ({"pod": "b"}, "NaN"), ({"pod": "c"}, "0.97"))
    verdict = evaluate(client, "order DB pool", "in_use / max", 0.9, ">", window="5m")
    assert verdict.violated and verdict.value == 0.97 and verdict.labels == {"pod": "c"}
    assert 'order DB pool 0.97 for {pod="c"} over the last 5m is above 0.9' in verdict.message
    low = evaluate(client, "order traffic", "rate", 0.5, "<")
    assert low.violated and low.value == 0.2, "for a lower limit the lowest value is the worst"


def test_comparison_edges() -> None:
    at_limit = prometheus_answering(({}, "0.05"))
    assert evaluate(at_limit, "x", "q", 0.05, ">").passed
    assert evaluate(at_limit, "x", "q", 0.05, ">=").violated
    assert evaluate(prometheus_answering(({}, "0")), "order request rate", "q", 0, "<=").violated
    with pytest.raises(ValueError, match="comparison must be one of"):
        evaluate(at_limit, "x", "q", 0.05, "gt")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="threshold must be a number"):
        evaluate(at_limit, "x", "q", math.nan, ">")


def test_require_fails_the_check_with_the_message_alone() -> None:
    verdict = promql.ERROR_RATE.evaluate(prometheus_answering(({}, "0.5")), "order", window="1m")
    with pytest.raises(pytest.fail.Exception, match=r"^order 5xx ratio 0.5 \(50%\)") as caught:
        verdict.require()
    assert caught.value.pytrace is False


def test_prometheus_errors_are_raised_not_turned_into_verdicts() -> None:
    bad = {"status": "error", "errorType": "bad_data", "error": "parse error"}
    with pytest.raises(PrometheusQueryError):
        evaluate(prometheus_answering(status=400, body=bad), "x", "sum(", 1, ">")
    down = {"status": "error", "errorType": "unavailable", "error": "TSDB not ready"}
    with pytest.raises(PrometheusUnavailable):
        evaluate(prometheus_answering(status=503, body=down), "x", "up", 1, ">")


def test_since_deploy_check_needs_the_deploy_time_and_says_it() -> None:
    deployed = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="pass deployed_at"):
        promql.REDIS_TTL.evaluate(prometheus_answering(({}, "0")), "product")
    verdict = promql.REDIS_TTL.evaluate(prometheus_answering(({}, "3")), "product", deployed_at=deployed,
                                        at=deployed + timedelta(minutes=10))
    assert verdict.query == 'sum(increase(redis_ttl_violations_total{service="product"}[10m]))'
    assert verdict.message.startswith(
        "product Redis TTL violations 3 since the deploy at 2024-01-01T12:00:00Z (10m) is above 0")
    assert "g0.end_input=2024-01-01+12%3A10%3A00" in verdict.link


def test_grafana_link_in_the_message_when_grafana_is_configured() -> None:
    client = prometheus_answering(({}, "1200"), grafana="https://grafana.example")
    verdict = promql.KAFKA_LAG.evaluate(client, "order")
    assert verdict.message.startswith("order Kafka consumer lag 1200 messages now is above 1000 messages")
    assert "— graph: https://grafana.example/explore?" in verdict.message


def test_thresholds_and_windows_can_be_overridden_from_config() -> None:
    check = Check("x", "thing", promql.ERROR_RATIO, 0.05, ">", "runbook Section 4", unit="ratio")
    verdict = check.evaluate(prometheus_answering(({}, "0.03")), "order", window="2m", threshold=0.02)
    assert verdict.violated and verdict.threshold == 0.02 and "[2m]" in verdict.query


# -- evidence: a value computed from too few requests or observations judges nothing ----------------------------------


@pytest.mark.parametrize("value", ["0", "0.5", "NaN"])
def test_a_ratio_over_too_few_requests_is_inconclusive_with_its_count(value: str) -> None:
    """Whatever the ratio (clean, broken, 0/0): below prometheus.min_requests it is neither a pass nor a failure."""
    verdict = promql.ERROR_RATE.evaluate(prometheus_answering(({}, value), counted="3"), "order", window="15s")
    assert (verdict.passed, verdict.violated, verdict.outcome, verdict.evidence) == (False, False, "too little evidence", 3)
    assert "over 3 requests in the last 15s: fewer than prometheus.min_requests=20 requests — inconclusive" in verdict.message
    assert "this run's own requests count too" in verdict.message
    assert 'count: sum(increase(http_requests_total{service="order",route!~"/metrics|/health.*"}[15s]))' in verdict.message
    with pytest.raises(pytest.fail.Exception, match=r"^inconclusive: order 5xx ratio") as caught:
        verdict.require(escalation="runbook Section 9: 500s spike above threshold")
    assert is_inconclusive(caught.value) and not culprits_of(caught.value) and caught.value.escalation is None


def test_no_counted_series_is_zero_evidence() -> None:
    verdict = promql.ERROR_RATE.evaluate(prometheus_answering(({}, "NaN"), counted=None), "order", window="15s")
    assert verdict.too_little_evidence and verdict.evidence == 0
    assert "not measurable (0/0) over 0 requests" in verdict.message


def test_the_minimum_is_the_envs_and_enough_evidence_judges_the_value() -> None:
    client = prometheus_answering(({}, "0.08"), counted="24")
    assert promql.ERROR_RATE.evaluate(client, "order", window="15s").violated, "24 requests >= the default 20"
    fewer = promql.ERROR_RATE.evaluate(client, "order", window="15s", minimum=50)
    assert fewer.too_little_evidence and "fewer than prometheus.min_requests=50" in fewer.message


def test_a_p99_from_too_few_observations_is_inconclusive() -> None:
    verdict = promql.P99.evaluate(prometheus_answering(({}, "4.2"), counted="60"), "search", window="15s")
    assert verdict.too_little_evidence and not verdict.violated
    assert "search p99 latency 4.2s over 60 observations in the last 15s: fewer than prometheus.min_observations=100" \
        in verdict.message
    assert "_count{service=\"search\",route!~" in verdict.message
    assert promql.P99.evaluate(prometheus_answering(({}, "4.2"), counted="100"), "search", window="15s").violated
