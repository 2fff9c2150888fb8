"""Runbook Step 4 — smoke tests: /health and /metrics of every service, directly and through the gateway."""

from __future__ import annotations

import pytest

from polycheck.core.config import EnvConfig
from polycheck.core.contract import MetricsContract
from polycheck.checks.health import (
    HEALTH,
    LIVE,
    METRICS,
    READY,
    expect_gateway_route,
    expect_health_ok,
    expect_metric_families,
    expect_probe_ok,
    expect_release_version,
)
from polycheck.clients.http import ServiceClient
from polycheck.clients.fanout import GATEWAY_PROBE

pytestmark = [pytest.mark.smoke, pytest.mark.synthetic, pytest.mark.concurrent]


@pytest.mark.rollback
@pytest.mark.requests(HEALTH)
def test_health_reports_ok(service: str, service_client: ServiceClient, env_config: EnvConfig) -> None:
    """Runbook Step 4 `/health`: 200, status ok, its own name and a semantic version, within the latency budget."""
    expect_health_ok(service_client, service, within=env_config.thresholds.health_latency_seconds)


@pytest.mark.rollback
@pytest.mark.requests(HEALTH)
def test_runs_the_release_version(
    service: str, service_client: ServiceClient, env_config: EnvConfig, cli_release_version: str | None
) -> None:
    """Runbook Step 4: the service runs the version this release deployed (--release-version or the env's pin)."""
    expected = env_config.expected_version(service, cli_release_version)
    if expected is None:
        pytest.skip("no release version given (--release-version) nor pinned in the env config")
    source = "--release-version" if cli_release_version else f"pinned in {env_config.source}"
    expect_release_version(service_client, service, expected, source=source)


@pytest.mark.rollback
@pytest.mark.requests(LIVE)
def test_liveness_probe_answers(service_client: ServiceClient, env_config: EnvConfig) -> None:
    """Runbook Section 8 liveness probe: /health/live is 200."""
    expect_probe_ok(service_client, LIVE, "liveness", within=env_config.thresholds.health_latency_seconds)


@pytest.mark.rollback
@pytest.mark.requests(READY)
def test_readiness_probe_answers(service_client: ServiceClient, env_config: EnvConfig) -> None:
    """Runbook Section 8 readiness probe: /health/ready is 200, so the pod takes traffic."""
    expect_probe_ok(service_client, READY, "readiness", within=env_config.thresholds.health_latency_seconds)


@pytest.mark.rollback
@pytest.mark.requests(METRICS)
def test_metrics_expose_contract_families(
    service: str, service_client: ServiceClient, env_config: EnvConfig, metrics_contract: MetricsContract
) -> None:
    """Runbook Step 4 `/metrics`: a valid Prometheus exposition with the contract's metric families."""
    families = metrics_contract.families_for(env_config, service)
    expect_metric_families(service_client, service, families, within=env_config.thresholds.health_latency_seconds)


@pytest.mark.rollback("gateway")
@pytest.mark.requests(GATEWAY_PROBE)
def test_gateway_routes_to_service(routed_service: str, gateway_client: ServiceClient, env_config: EnvConfig) -> None:
    """Runbook Step 4: the gateway routes the service's /api/... paths to it."""
    probe = env_config.service(routed_service).gateway_probe
    assert probe is not None, f"services.{routed_service}.gateway_probe vanished from {env_config.source}"
    expect_gateway_route(gateway_client, routed_service, probe, within=env_config.thresholds.health_latency_seconds)
