"""Runbook Section 6 post-deploy validation and Section 4 rollback triggers, read from Prometheus."""

from __future__ import annotations

import dataclasses

import pytest

from polycheck.clients import promql
from polycheck.core.config import EnvConfig
from polycheck.checks.postdeploy import DataReadiness, DeployTimes, deployed_at, evidence_minimum, judged_window
from polycheck.clients.prometheus import PrometheusClient, PrometheusError, parse_duration
from polycheck.core.failures import inconclusive

pytestmark = [pytest.mark.postdeploy, pytest.mark.concurrent]


def test_metric_within_runbook_limit(
    metric_check: tuple[str, str], prometheus: PrometheusClient, data_readiness: DataReadiness, env_config: EnvConfig,
    deploy_times: DeployTimes,
) -> None:
    """Runbook Sections 4 and 6: 5xx ratio, p99 latency, DB pool saturation, Kafka lag and errors, Redis TTL violations within limits."""
    service, key = metric_check
    settings = env_config.prometheus
    deployed = deployed_at(deploy_times, service, parse_duration(settings.window))
    data_readiness.require(service, env_config.deployment_of(service), deployed)
    check = promql.CHECKS[key]
    if key in settings.queries:
        check = dataclasses.replace(check, template=settings.queries[key])
    # the traffic checks judge only this release's traffic: since the deploy, when it is more recent than the window
    window = judged_window(settings.window, deployed) if check.evidence is not None else settings.window
    try:
        verdict = check.evaluate(
            prometheus, service, window=window, threshold=settings.thresholds.get(key),
            deployed_at=deployed,
            deployment=env_config.deployment_of(service), exclude_routes=env_config.excluded_routes(service),
            minimum=evidence_minimum(check, settings),
        )
    except PrometheusError as exc:
        inconclusive(f"{service} {check.title}: Prometheus could not answer: {exc}")
    verdict.require(escalation=check.section_9)
