"""Runbook Section 2.3: the Argo Rollouts analysis of a canary step (`pytest -m canary --canary-step 20`)."""

from __future__ import annotations

import pytest

from polycheck.checks.canary import CanaryPods, judge_canary
from polycheck.checks.postdeploy import DataReadiness
from polycheck.core.config import EnvConfig
from polycheck.core.failures import check_failed, inconclusive
from polycheck.clients.kube import Kube, KubeNotFound, selector_of
from polycheck.clients.prometheus import PrometheusClient, PrometheusError
from polycheck.clients.promql import CANARY_ERROR_RATE
from polycheck.scope.run import Run

pytestmark = [pytest.mark.canary]


def test_canary_error_rate_within_limit(
    canary_service: str, kube: Kube, prometheus: PrometheusClient, env_config: EnvConfig, run: Run,
    data_readiness: DataReadiness,
) -> None:
    """Runbook Section 2.3: the canary's 5xx ratio is ≤ 2% and no worse than the stable version's; else abort the canary."""
    name, settings = env_config.deployment_of(canary_service), env_config.prometheus
    try:
        rollout = kube.rollout(name)
        pods = CanaryPods.of(rollout, kube.replicasets(selector_of(rollout)))
    except KubeNotFound as exc:
        check_failed(f"{canary_service}: rollout {name} does not exist: {exc}", culprit=canary_service)
    if pods.aborted:
        pytest.skip(f"rollout {name}: the canary {pods.canary} was {pods.abort_text()}; traffic is back on the "
                    f"stable {pods.stable}: nothing to gate, and it is not aborted again")
    if not pods.in_progress:
        pytest.skip(f"no canary of {name} in progress (stable = current = {pods.stable})")
    step = run.canary_step  # None: the gate judges the step the Rollout is at
    if step is not None and pods.weight != step:
        inconclusive(f"rollout {name}: the canary carries {pods.weight_text()}, but this analysis gates the {step}% step: "
                     f"it ran at the wrong moment, which says nothing about the release; nothing aborted ({pods.status_text()})")
    data_readiness.require(canary_service, name)  # known hanging, not scraped, or no series: at once, no data wait
    try:
        judge_canary(
            prometheus, canary_service, pods, label=settings.pod_hash_label, window=settings.canary_window,
            threshold=settings.thresholds.get("canary_error_rate", CANARY_ERROR_RATE.threshold), margin=settings.canary_margin,
            min_requests=env_config.canary.min_requests, excluded=env_config.excluded_routes(canary_service),
            confidence=env_config.canary.confidence, latency_effect=env_config.canary.latency_effect,
        )
    except PrometheusError as exc:
        inconclusive(f"{canary_service} canary gate: Prometheus could not answer: {exc}")
