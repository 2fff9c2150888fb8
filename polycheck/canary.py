"""Runbook Section 2.3: at each canary step, the canary's error rate must stay under 2% and not exceed the stable's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .failures import check_failed
from .prometheus import PrometheusClient
from .promql import CANARY_ERROR_RATE, Verdict, evaluate

RULE = "runbook Section 2.3: automatic rollback on error rate > 2% at each canary step"


@dataclass(frozen=True)
class CanaryPods:
    """The pod-template hashes of a Rollout's stable and canary ReplicaSets, and the canary's traffic weight."""

    stable: str
    canary: str
    weight: int

    @classmethod
    def of(cls, rollout: dict[str, Any]) -> "CanaryPods":
        status = rollout.get("status", {})
        weights = ((status.get("canary") or {}).get("weights") or {}).get("canary") or {}
        return cls(status.get("stableRS", ""), status.get("currentPodHash", ""), int(weights.get("weight") or 0))

    @property
    def in_progress(self) -> bool:
        return bool(self.canary) and self.canary != self.stable


def error_ratio_query(service: str, label: str, pod_hash: str, window: str) -> str:
    selector = f'service="{service}",{label}="{pod_hash}"'
    return (
        f'(sum(rate(http_requests_total{{{selector},status=~"5.."}}[{window}])) or vector(0))'
        f" / sum(rate(http_requests_total{{{selector}}}[{window}]))"
    )


def judge_canary(
    client: PrometheusClient, service: str, pods: CanaryPods, *, label: str, window: str,
    threshold: float = CANARY_ERROR_RATE.threshold, margin: float = 0.01,
) -> tuple[Verdict, Verdict]:
    """(canary verdict against the limit, stable verdict for comparison); fails the check when the canary is worse."""
    __tracebackhide__ = True
    canary = evaluate(client, f"{service} canary ({pods.canary}, {pods.weight}% of traffic) 5xx ratio",
                      error_ratio_query(service, label, pods.canary, window), threshold, ">", window=window,
                      rule=RULE, unit="ratio")
    canary.require()
    stable = evaluate(client, f"{service} stable ({pods.stable}) 5xx ratio",
                      error_ratio_query(service, label, pods.stable, window), 1.0, ">", absent_ok=True, window=window,
                      unit="ratio")
    if canary.value is not None and stable.value is not None and stable.passed and stable.outcome == "ok":
        if canary.value > stable.value + margin:
            check_failed(
                f"{service} canary {pods.canary} errs more than the stable version: 5xx ratio {canary.value:.2%} vs "
                f"{stable.value:.2%} on {pods.stable} (allowed margin {margin:.0%}) over the last {window} ({RULE}) — "
                f"queries: {canary.query} | {stable.query} — graph: {canary.link}"
            )
    return canary, stable
