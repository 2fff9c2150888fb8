"""The runbook's rollback triggers and post-deploy validations as PromQL, and a verdict an on-call can act on.

Templates use `{service}` (the short name, `order`), `{deployment}` (`order-service`: consumer groups are
named after it), `{window}` (a range such as `5m`), `{since}` (the range from the deploy to now, see
`since_deploy`) and `{api_routes}` (the `route` matcher that keeps the service's own API traffic: Prometheus's
`/metrics` scrapes and the kubelet's `/health*` probes left out, see `api_routes`). Every other brace is
PromQL's own. The values come from the environment's config.

`evaluate` turns one query into a `Verdict`. `comparison` is the condition that BREAKS the threshold,
written the way the runbook writes its triggers (`">"` for "error rate > 5%"). What counts as a pass:

- a value that does not break the threshold;
- no series at all (`no data`) or only NaN (`no traffic`: an error ratio or a latency quantile is 0/0
  when nothing was counted in the window) ONLY when `absent_ok` is set; otherwise they fail, because a
  check that could not see the service has not shown that the release is healthy;
- a value computed from too little evidence (`evidence`: fewer requests or observations in the window than
  the minimum) is `too little evidence`: never a pass, never a failure; its message carries the count;
- +Inf and -Inf are values like any other (+Inf > 2.5 breaks a latency limit: histogram_quantile returns
  +Inf when the quantile lies above the largest finite bucket).

Prometheus errors (unreachable, bad query) are raised, not turned into verdicts: they say nothing about
the release. `Verdict.violated` is the one outcome that shows the release itself broke a limit.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, UTC
from typing import Literal

from polycheck.core.config import DEFAULT_EXCLUDED_ROUTES
from polycheck.core.failures import check_failed, inconclusive
from polycheck.clients.prometheus import (
    Duration,
    Moment,
    PrometheusClient,
    Sample,
    format_duration,
    format_labels,
    format_value,
    parse_duration,
)

Comparison = Literal[">", ">=", "<", "<="]
Outcome = Literal["ok", "violated", "no data", "no traffic", "too little evidence"]

_PLACEHOLDER = re.compile(r"\{(service|deployment|window|since|api_routes)\}")
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_COMPARE: dict[str, tuple[Callable[[float, float], bool], str, str]] = {
    # comparison -> (breaks?, words when broken, words when not)
    ">": (operator.gt, "is above", "is not above"),
    ">=": (operator.ge, "is at or above", "is below"),
    "<": (operator.lt, "is below", "is not below"),
    "<=": (operator.le, "is at or below", "is above"),
}
MIN_GRAPH_SECONDS = 3600.0

# -- templates -------------------------------------------------------------------------------------

# Share of requests answered 5xx. The numerator falls back to 0 when the service has never answered a 5xx
# (no such series yet); with no requests at all the denominator is empty (no data), or 0 (NaN: no traffic).
ERROR_RATIO = (
    '(sum(rate(http_requests_total{service="{service}",{api_routes},status=~"5.."}[{window}])) or vector(0))'
    ' / sum(rate(http_requests_total{service="{service}",{api_routes}}[{window}]))'
)
# 99th percentile of request latency, in seconds, across the service's API routes and pods.
P99_LATENCY = (
    'histogram_quantile(0.99, sum by (le) '
    '(rate(http_request_duration_seconds_bucket{service="{service}",{api_routes}}[{window}])))'
)
# The evidence of those two: the API requests answered, and the latencies observed, during the window.
REQUEST_COUNT = 'sum(increase(http_requests_total{service="{service}",{api_routes}}[{window}]))'
OBSERVATION_COUNT = 'sum(increase(http_request_duration_seconds_count{service="{service}",{api_routes}}[{window}]))'
# The fullest pod's peak share of its DB pool in use during the window (1 = saturated).
DB_POOL_SATURATION = (
    'max(max_over_time(db_pool_connections_in_use{service="{service}"}[{window}])'
    ' / db_pool_connections_max{service="{service}"})'
)
# Messages the service's consumer group trails, on its worst topic (summed over partitions).
KAFKA_CONSUMER_LAG = 'max(sum by (topic) (kafka_consumergroup_lag{consumergroup="{deployment}"}))'
# Consumer errors counted during the window.
KAFKA_CONSUMER_ERRORS = 'sum(increase(kafka_consumer_errors_total{service="{service}"}[{window}]))'
# Redis TTL violations counted since the deploy.
REDIS_TTL_VIOLATIONS = 'sum(increase(redis_ttl_violations_total{service="{service}"}[{since}]))'
# Requests per second: shows whether the service has traffic at all.
REQUEST_RATE = 'sum(rate(http_requests_total{service="{service}"}[{window}]))'


def render(
    template: str,
    *,
    service: str,
    window: Duration | None = None,
    since: Duration | None = None,
    deployment: str | None = None,
    exclude_routes: Sequence[str] = DEFAULT_EXCLUDED_ROUTES,
) -> str:
    """Fill a template's placeholders; ValueError when a used one is missing or not a safe value.

    `deployment` defaults to `<service>-service`; `window` and `since` must be Prometheus durations;
    `exclude_routes` are the `route` values `{api_routes}` leaves out.
    """
    values: dict[str, str | None] = {
        "service": _name(service, "service"),
        "deployment": _name(deployment or f"{service}-service", "deployment"),
        "window": format_duration(window) if window is not None else None,
        "since": format_duration(since) if since is not None else None,
        "api_routes": api_routes(exclude_routes),
    }

    def fill(match: re.Match[str]) -> str:
        value = values[match.group(1)]
        if value is None:
            raise ValueError(f"the query uses {{{match.group(1)}}} but no {match.group(1)} was given: {template}")
        return value

    return _PLACEHOLDER.sub(fill, template)


def api_routes(excluded: Sequence[str] = DEFAULT_EXCLUDED_ROUTES) -> str:
    """The `route` matcher of a service's own API traffic: `route!~"/metrics|/health.*"` (anchored, as PromQL's
    regexes are); with nothing excluded, one that keeps every series (a series without a route label too)."""
    if not excluded:
        return 'route=~".*"'
    for pattern in excluded:
        if not pattern or '"' in pattern or "\\" in pattern:
            raise ValueError(f"route pattern {pattern!r} must be a non-empty regex without quotes or backslashes")
    return 'route!~"' + "|".join(excluded) + '"'


def placeholders(template: str) -> set[str]:
    """The placeholders a template uses (`service`, `deployment`, `window`, `since`, `api_routes`)."""
    return set(_PLACEHOLDER.findall(template))


def since_deploy(deployed_at: Moment, now: Moment | None = None) -> str:
    """The range from the deploy to `now` (default: the current time), rounded up to whole seconds (`12m5s`)."""
    start = deployed_at.timestamp() if isinstance(deployed_at, datetime) else float(deployed_at)
    end = time.time() if now is None else (now.timestamp() if isinstance(now, datetime) else float(now))
    if end <= start:
        raise ValueError(f"the deploy time {_iso(start)} is not before {_iso(end)}")
    return format_duration(math.ceil(end - start))


def _name(value: str, what: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(f"{what} {value!r} is not a plain name (lower-case letters, digits, '-')")
    return value


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# -- evidence --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    """What a measured value rests on: a count over the same window (`query`), and the least it needs."""

    query: str  # in a Check: a template, rendered with the check's own placeholders
    minimum: float
    noun: str = "requests"  # what is counted
    setting: str = "prometheus.min_requests"  # the config key of the minimum, named in the message
    note: str = "this run's own requests count too"  # where the counted traffic may come from

    def count(self, client: PrometheusClient, at: Moment | None = None) -> float:
        """The count now: 0 when nothing was counted (no series, or NaN)."""
        values = [s.value for s in client.query(self.query, at, allow_empty=True) if not math.isnan(s.value)]
        return max(0.0, sum(values))

    def words(self, counted: float) -> str:
        """'240 requests' (an increase() is extrapolated: shown rounded)."""
        return f"{counted:.0f} {self.noun}" if counted >= 10 or counted == int(counted) else f"{counted:.1f} {self.noun}"


# -- verdicts --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check: the value seen, the limit, and a message that says what to do."""

    name: str
    query: str
    value: float | None
    threshold: float
    comparison: str
    outcome: Outcome
    passed: bool
    message: str
    link: str
    labels: Mapping[str, str] = field(default_factory=dict)
    evidence: float | None = None  # how much the value rests on (requests, observations), when counted

    @property
    def violated(self) -> bool:
        """The release broke the limit (as opposed to: there was nothing to judge)."""
        return self.outcome == "violated"

    @property
    def too_little_evidence(self) -> bool:
        """The value rests on fewer requests or observations than its minimum: it judges nothing."""
        return self.outcome == "too little evidence"

    def require(self, escalation: str | None = None) -> None:
        """Fail the current check with the message unless the verdict passed; a violation escalates with `escalation`;
        too little evidence makes it inconclusive (never a failure, never a rollback)."""
        __tracebackhide__ = True
        if self.too_little_evidence:
            inconclusive(self.message)
        if not self.passed:
            check_failed(self.message, escalation=escalation if self.violated else None)


def evaluate(
    client: PrometheusClient,
    name: str,
    promql: str,
    threshold: float,
    comparison: Comparison,
    absent_ok: bool = False,
    *,
    window: Duration | None = None,
    period: str | None = None,
    rule: str = "",
    unit: str = "",
    at: Moment | None = None,
    evidence: Evidence | None = None,
) -> Verdict:
    """Run `promql` and judge its value against `threshold`; see the module docstring for the rules.

    `comparison` is how a value breaks the limit (`">"`: fail when value > threshold). With several
    series, the worst one is judged and named. `window` (or `period`, free text) says what span the value
    covers; `rule` names the runbook line; `unit` is appended to numbers (`"s"`; `"ratio"` adds a %).
    `evidence` counts what the value rests on over the same window: below its minimum the verdict is `too little
    evidence`, whatever the value. Raises PrometheusUnavailable / PrometheusQueryError when Prometheus cannot answer.
    """
    if comparison not in _COMPARE:
        raise ValueError(f"comparison must be one of {', '.join(_COMPARE)} (the condition that fails), got {comparison!r}")
    if not isinstance(threshold, (int, float)) or math.isnan(threshold):
        raise ValueError(f"threshold must be a number, got {threshold!r}")
    breaks, broken_words, ok_words = _COMPARE[comparison]
    span = period if period is not None else (f"over the last {format_duration(window)}" if window is not None else "")
    graph_seconds = max(MIN_GRAPH_SECONDS, parse_duration(format_duration(window)) if window is not None else 0.0)
    link = client.graph_link(promql, graph_seconds, end=at)
    where = f" ({rule})" if rule else ""
    tail = f" — query: {promql} — graph: {link}"
    limit = f"{comparison} {_show(threshold, unit)}"

    samples = client.query(promql, at, allow_empty=True)
    numbers = [s for s in samples if not math.isnan(s.value)]
    counted: float | None = None
    if evidence is not None:
        counted = evidence.count(client, at)
        span = _evidence_span(evidence.words(counted), span)
        if counted < evidence.minimum:
            value = _worst(numbers, comparison).value if numbers else None
            seen = _show(value, unit) if value is not None else "not measurable (0/0)"
            message = (f"{name} {seen} {span}: fewer than {evidence.setting}={evidence.minimum:g} {evidence.noun} "
                       f"— inconclusive, neither a pass nor a failure ({evidence.note}); limit {limit}{where}"
                       f"{tail} — count: {evidence.query}")
            return Verdict(name, promql, value, float(threshold), comparison, "too little evidence", False, message,
                           link, evidence=counted)
    if not numbers:
        outcome: Outcome = "no traffic" if samples else "no data"
        if samples:
            what = "is NaN (0/0: nothing was counted, e.g. no requests)"
        else:
            what = "has no data (the query returned no series: the metric is not scraped or the selector matches nothing)"
        verdict = "allowed for this check (absent_ok)" if absent_ok else "that is not a pass: nothing shows the limit holds"
        message = f"{name} {_spaced(span)}{what}; {verdict}; limit {limit}{where}{tail}"
        return Verdict(name, promql, math.nan if samples else None, float(threshold), comparison, outcome,
                       absent_ok, message, link, evidence=counted)

    worst = _worst(numbers, comparison)
    broken = breaks(worst.value, threshold)
    who = f" for {format_labels(worst.labels)}" if len(samples) > 1 and worst.labels else ""
    hint = ""
    if math.isinf(worst.value) and "histogram_quantile" in promql:
        hint = " (+Inf: above the histogram's largest finite bucket)" if worst.value > 0 else ""
    words = broken_words if broken else ok_words
    message = (
        f"{name} {_show(worst.value, unit)}{hint}{who} {_spaced(span)}{words} {_show(threshold, unit)}{where}{tail}"
    )
    return Verdict(name, promql, worst.value, float(threshold), comparison, "violated" if broken else "ok",
                   not broken, message, link, dict(worst.labels), counted)


def _evidence_span(counted: str, span: str) -> str:
    """'over 240 requests in the last 15s' from 'over the last 15s'."""
    if span.startswith("over "):
        return f"over {counted} in {span[len('over '):]}"
    return f"over {counted} {span}".rstrip()


def _worst(samples: list[Sample], comparison: str) -> Sample:
    pick = max if comparison in (">", ">=") else min
    return pick(samples, key=lambda s: s.value)


def _spaced(text: str) -> str:
    return f"{text} " if text else ""


def _show(value: float, unit: str) -> str:
    text = format_value(value)
    if unit == "ratio":
        return f"{text} ({value * 100:.3g}%)" if math.isfinite(value) else text
    if unit and math.isfinite(value):
        return f"{text}{'' if unit in ('s', 'ms', '%') else ' '}{unit}"
    return text


# -- the runbook's checks --------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One runbook line as a query template, a default limit, and how the limit is broken."""

    key: str
    title: str
    template: str
    threshold: float
    comparison: Comparison
    rule: str
    unit: str = ""
    window: str = "5m"
    absent_ok: bool = False
    families: tuple[str, ...] = ()  # the metric families a service must export for this check to apply to it
    section_9: str | None = None  # the runbook Section 9 escalation a violation of this check calls for
    evidence: Evidence | None = None  # what the value rests on (its query a template) and the default minimum

    def query(
        self,
        service: str,
        *,
        window: Duration | None = None,
        since: Duration | None = None,
        deployment: str | None = None,
        exclude_routes: Sequence[str] = DEFAULT_EXCLUDED_ROUTES,
        template: str | None = None,
    ) -> str:
        return render(template or self.template, service=service, window=window or self.window, since=since,
                      deployment=deployment, exclude_routes=exclude_routes)

    def evaluate(
        self,
        client: PrometheusClient,
        service: str,
        *,
        window: Duration | None = None,
        deployed_at: Moment | None = None,
        threshold: float | None = None,
        absent_ok: bool | None = None,
        deployment: str | None = None,
        at: Moment | None = None,
        exclude_routes: Sequence[str] = DEFAULT_EXCLUDED_ROUTES,
        minimum: float | None = None,
    ) -> Verdict:
        """Judge this check for `service`; a `{since}` check needs `deployed_at`; `minimum` overrides the evidence's."""
        uses_since = "since" in placeholders(self.template)
        if uses_since and deployed_at is None:
            raise ValueError(f"{self.key} counts since the deploy: pass deployed_at")
        since = since_deploy(deployed_at, at) if uses_since else None  # type: ignore[arg-type]
        window = window or self.window
        promql = self.query(service, window=window, since=since, deployment=deployment, exclude_routes=exclude_routes)
        evidence = None
        if self.evidence is not None:
            counting = self.query(service, window=window, since=since, deployment=deployment,
                                  exclude_routes=exclude_routes, template=self.evidence.query)
            evidence = dataclasses.replace(self.evidence, query=counting,
                                           minimum=self.evidence.minimum if minimum is None else minimum)
        if uses_since:
            period = f"since the deploy at {_iso(_epoch(deployed_at))} ({since})"  # type: ignore[arg-type]
        else:
            period = f"over the last {format_duration(window)}" if "window" in placeholders(self.template) else "now"
        return evaluate(
            client,
            f"{service} {self.title}",
            promql,
            self.threshold if threshold is None else threshold,
            self.comparison,
            self.absent_ok if absent_ok is None else absent_ok,
            window=since or window,
            period=period,
            rule=self.rule,
            unit=self.unit,
            at=at,
            evidence=evidence,
        )


def _epoch(moment: Moment) -> float:
    return moment.timestamp() if isinstance(moment, datetime) else float(moment)


ERROR_RATE = Check(
    "error_rate", "5xx ratio", ERROR_RATIO, 0.05, ">",
    "runbook Section 4 rollback trigger: error rate > 5%; Section 6: no spike in 500s", unit="ratio",
    families=("http_requests_total",), section_9="runbook Section 9: 500s spike above threshold",
    evidence=Evidence(REQUEST_COUNT, 20),
)
CANARY_ERROR_RATE = Check(
    "canary_error_rate", "5xx ratio", ERROR_RATIO, 0.02, ">",
    "runbook Section 2.3: a canary step rolls back on error rate > 2%", unit="ratio", window="1m",
)
P99 = Check(
    "p99_latency", "p99 latency", P99_LATENCY, 2.5, ">",
    "runbook Section 4 rollback trigger: p99 latency > 2.5s", unit="s", families=("http_request_duration_seconds",),
    evidence=Evidence(OBSERVATION_COUNT, 100, "observations", "prometheus.min_observations",
                      "this run's own requests are observed too"),
)
DB_POOL = Check(
    "db_pool_saturation", "DB pool saturation (in use / max)", DB_POOL_SATURATION, 0.9, ">",
    "runbook Section 4 rollback trigger: DB connection saturation; Section 6: DB performance stable "
    "(0.9 is this project's limit, the runbook gives none)", unit="ratio",
    families=("db_pool_connections_in_use", "db_pool_connections_max"),
)
KAFKA_ERRORS = Check(
    "kafka_consumer_errors", "Kafka consumer errors", KAFKA_CONSUMER_ERRORS, 0, ">",
    "runbook Section 4 rollback trigger: Kafka consumer errors", families=("kafka_consumer_errors_total",),
)
KAFKA_LAG = Check(
    "kafka_consumer_lag", "Kafka consumer lag", KAFKA_CONSUMER_LAG, 1000, ">",
    "runbook Section 6: Kafka consumer lag normal; Section 9: escalate when high "
    "(1000 messages is this project's limit, the runbook gives none)", unit="messages",
    families=("kafka_consumergroup_lag",), section_9="runbook Section 9: Kafka lag high",
)
REDIS_TTL = Check(
    "redis_ttl_violations", "Redis TTL violations", REDIS_TTL_VIOLATIONS, 0, ">",
    "runbook Section 6: no increase in Redis TTL violations", families=("redis_ttl_violations_total",),
)
TRAFFIC = Check(
    "traffic", "request rate (req/s)", REQUEST_RATE, 0, "<=",
    "no traffic: nothing to validate the release with",
)

CHECKS: dict[str, Check] = {c.key: c for c in (ERROR_RATE, CANARY_ERROR_RATE, P99, DB_POOL, KAFKA_ERRORS, KAFKA_LAG, REDIS_TTL, TRAFFIC)}
ROLLBACK_TRIGGERS: tuple[Check, ...] = (ERROR_RATE, P99, DB_POOL, KAFKA_ERRORS)
POST_DEPLOY_VALIDATIONS: tuple[Check, ...] = (ERROR_RATE, KAFKA_LAG, DB_POOL, REDIS_TTL)
POST_DEPLOY_CHECKS: tuple[Check, ...] = (ERROR_RATE, P99, DB_POOL, KAFKA_ERRORS, KAFKA_LAG, REDIS_TTL)
