"""Runbook Section 2.3: at each canary step, the canary's error rate must stay under 2% and not exceed the stable's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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
    excluded: Sequence[str] = DEFAULT_EXCLUDED_ROUTES,
) -> tuple[Verdict, Verdict]:
    """(canary verdict against the limit, stable verdict for comparison); fails the check when the canary is worse,
    is inconclusive when the canary (and so its judgement) rests on fewer than `min_requests` requests; the stable
    version is compared with only when it has that many too."""
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
    if canary.value is not None and stable.value is not None and stable.passed and stable.outcome == "ok":
        if canary.value > stable.value + margin:
            check_failed(
                f"{service} canary {pods.canary} errs more than the stable version: 5xx ratio {canary.value:.2%} vs "
                f"{stable.value:.2%} on {pods.stable} (allowed margin {margin:.0%}) over the last {window} ({RULE}) — "
                f"queries: {canary.query} | {stable.query} — graph: {canary.link}\n  rollout: {pods.status_text()}",
                culprit=service,
            )
    return canary, stable
