"""Runbook Section 2.3: at each canary step, the canary's error rate must stay under 2% and not exceed the stable's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from polycheck.checks.canary_stats import Comparison, bucket_counts, rank_test, two_proportion
from polycheck.clients.argo import CanaryState, canary_state
from polycheck.core.failures import check_failed, inconclusive
from polycheck.clients.prometheus import PrometheusClient
from polycheck.clients.promql import CANARY_ERROR_RATE, Evidence, Verdict, api_routes, evaluate
from polycheck.core.config import DEFAULT_EXCLUDED_ROUTES

RULE = "runbook Section 2.3: automatic rollback on error rate > 2% at each canary step"


@dataclass(frozen=True)
class CanaryPods:
    """The pod-template hashes of a Rollout's stable and canary ReplicaSets, and the canary's traffic weight.

    `weight` is the weight the gate judges: `status.canary.weights.canary.weight` with traffic routing, else the
    setWeight in force at `status.currentStepIndex` (see polycheck.clients.argo.canary_state, kept in `state`).
    """

    stable: str
    canary: str
    weight: int
    state: CanaryState | None = None

    @classmethod
    def of(cls, rollout: dict[str, Any], replicasets: list[dict[str, Any]] | None = None) -> CanaryPods:
        state = canary_state(rollout, replicasets)
        return cls(state.stable_hash, state.canary_hash, state.weight, state)

    @property
    def in_progress(self) -> bool:
        """A canary runs: the desired ReplicaSet is not the stable one, and the Rollout is not aborted."""
        if self.state is not None:
            return self.state.in_progress
        return bool(self.canary) and self.canary != self.stable

    @property
    def aborted(self) -> bool:
        """status.abort: the canary was aborted (by Argo or by a client); traffic is back on the stable pods."""
        return self.state is not None and self.state.aborted

    def abort_text(self) -> str:
        """'aborted at <abortedAt> by <who>: Rollout aborted update to revision N'."""
        return self.state.abort_text() if self.state is not None else "aborted"

    def status_text(self) -> str:
        """The Rollout's status in one line (phase, step, weight, hashes), for the failure and the escalation."""
        return self.state.describe() if self.state is not None else f"stable {self.stable}, canary {self.canary}, {self.weight}%"

    def weight_text(self) -> str:
        """'20% of traffic' and, when known, where the weight comes from and the canary's share of ready pods."""
        return f"{self.weight}% of traffic" + (f"; {self.state.weight_detail()}" if self.state is not None else "")


def _selector(service: str, label: str, pod_hash: str, excluded: Sequence[str]) -> str:
    return f'service="{service}",{label}="{pod_hash}",{api_routes(excluded)}'


def error_ratio_query(service: str, label: str, pod_hash: str, window: str,
                      excluded: Sequence[str] = DEFAULT_EXCLUDED_ROUTES) -> str:
    """The 5xx ratio of one pod-template hash's API requests (scrapes and probes left out)."""
    selector = _selector(service, label, pod_hash, excluded)
    return (
        f'(sum(rate(http_requests_total{{{selector},status=~"5.."}}[{window}])) or vector(0))'
        f" / sum(rate(http_requests_total{{{selector}}}[{window}]))"
    )


def request_count(service: str, label: str, pod_hash: str, window: str, minimum: float,
                  excluded: Sequence[str] = DEFAULT_EXCLUDED_ROUTES) -> Evidence:
    """The API requests one pod-template hash answered during the window: what its ratio rests on."""
    query = f"sum(increase(http_requests_total{{{_selector(service, label, pod_hash, excluded)}}}[{window}]))"
    return Evidence(query, minimum, "requests", "canary.min_requests",
                    "this run's own requests count too; nothing is aborted on it")


def judge_canary(
    client: PrometheusClient, service: str, pods: CanaryPods, *, label: str, window: str,
    threshold: float = CANARY_ERROR_RATE.threshold, margin: float = 0.01, min_requests: float = 50,
    excluded: Sequence[str] = DEFAULT_EXCLUDED_ROUTES, confidence: float = 0.95, latency_effect: float = 0.1,
) -> tuple[Verdict, Verdict]:
    """(canary verdict against the limit, stable verdict for comparison); fails the check when the canary is above
    the runbook's fixed limit or significantly worse than the stable version (compare_with_stable); inconclusive when
    either side rests on fewer than `min_requests` requests (with the count)."""
    __tracebackhide__ = True
    canary = evaluate(client, f"{service} canary ({pods.canary}, {pods.weight_text()}) 5xx ratio",
                      error_ratio_query(service, label, pods.canary, window, excluded), threshold, ">", window=window,
                      rule=RULE, unit="ratio",
                      evidence=request_count(service, label, pods.canary, window, min_requests, excluded))
    if canary.too_little_evidence:
        inconclusive(f"{canary.message}\n  rollout: {pods.status_text()}")
    if not canary.passed:
        check_failed(f"{canary.message}\n  rollout: {pods.status_text()}", culprit=service)
    stable = evaluate(client, f"{service} stable ({pods.stable}) 5xx ratio",
                      error_ratio_query(service, label, pods.stable, window, excluded), 1.0, ">", absent_ok=True,
                      window=window, unit="ratio",
                      evidence=request_count(service, label, pods.stable, window, min_requests, excluded))
    if stable.too_little_evidence and pods.weight >= 100:
        return canary, stable  # all traffic on the canary: no stable to compare with by design; the fixed limit decided
    if stable.too_little_evidence:
        inconclusive(f"{service} canary {pods.canary} cannot be compared with the stable version: {stable.message}\n"
                     f"  rollout: {pods.status_text()}")
    compare_with_stable(client, service, pods, label=label, window=window, margin=margin, confidence=confidence,
                        latency_effect=latency_effect, excluded=excluded)
    return canary, stable


def _total(client: PrometheusClient, promql: str) -> float:
    return sum(sample.value for sample in client.query(promql, allow_empty=True))


def _buckets(client: PrometheusClient, service: str, label: str, pod_hash: str, window: str,
             excluded: Sequence[str]) -> list[tuple[float, float]]:
    query = (f"sum by (le) (increase(http_request_duration_seconds_bucket{{{_selector(service, label, pod_hash, excluded)}}}"
             f"[{window}]))")
    return bucket_counts([(float(s.labels.get("le", "+Inf")), s.value) for s in client.query(query, allow_empty=True)])


def compare_with_stable(client: PrometheusClient, service: str, pods: CanaryPods, *, label: str, window: str, margin: float,
                        confidence: float, latency_effect: float, excluded: Sequence[str]) -> list[Comparison]:
    """The canary against the stable version over the same window: the 5xx ratio (two-proportion z-test) and the
    latency (Mann-Whitney U over the histogram buckets). Fails the check when either is significantly worse by more
    than its effect size; returns both comparisons otherwise."""
    __tracebackhide__ = True
    alpha = 1 - confidence
    counts = {}
    for side, pod_hash in (("canary", pods.canary), ("stable", pods.stable)):
        selector = _selector(service, label, pod_hash, excluded)
        counts[side] = (_total(client, f'sum(increase(http_requests_total{{{selector},status=~"5.."}}[{window}]))'),
                        _total(client, f"sum(increase(http_requests_total{{{selector}}}[{window}]))"))
    done = []
    where = f"over the last {window} ({RULE}; confidence {confidence:.0%})\n  rollout: {pods.status_text()}"
    if counts["canary"][1] > 0 and counts["stable"][1] > 0:
        errors = two_proportion(counts["canary"][0], counts["canary"][1], counts["stable"][0], counts["stable"][1])
        if errors.worse(alpha, margin):
            check_failed(
                f"{service} canary {pods.canary} errs more than the stable version {pods.stable}: 5xx ratio "
                f"{errors.canary:.2%} ({counts['canary'][0]:.0f} of {counts['canary'][1]:.0f} requests) vs {errors.stable:.2%} "
                f"({counts['stable'][0]:.0f} of {counts['stable'][1]:.0f}); {errors.test}: z = {errors.statistic:.2f}, "
                f"p = {errors.p_value:.2g}, difference {errors.effect:.2%} > effect size {margin:.0%} {where}",
                culprit=service)
        done.append(errors)
    canary_buckets = _buckets(client, service, label, pods.canary, window, excluded)
    stable_buckets = _buckets(client, service, label, pods.stable, window, excluded)
    if sum(n for _, n in canary_buckets) > 0 and sum(n for _, n in stable_buckets) > 0:
        latency = rank_test(canary_buckets, stable_buckets)
        if latency.worse(alpha, 0.5 + latency_effect):
            check_failed(
                f"{service} canary {pods.canary} is slower than the stable version {pods.stable}: median "
                f"{latency.canary * 1000:.1f} ms ({latency.canary_count:.0f} requests) vs {latency.stable * 1000:.1f} ms "
                f"({latency.stable_count:.0f}); {latency.test}: z = {latency.statistic:.2f}, p = {latency.p_value:.2g}, "
                f"P(canary slower) = {latency.effect:.2f} > {0.5 + latency_effect:.2f} {where}",
                culprit=service)
        done.append(latency)
    return done
