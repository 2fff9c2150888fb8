"""Runbook Step 3 (verify the rollout), Section 8 (zero downtime) and Section 2.3 (canary), on Kubernetes."""

from __future__ import annotations

from typing import Any

import pytest

from polycheck.core.config import EnvConfig
from polycheck.clients.kube import Kube
from polycheck.scope.run import Run
from polycheck.checks.rollout import (
    expect_canary_healthy,
    expect_pods_healthy,
    expect_release_image,
    expect_rollout_complete,
    expect_rollout_settled,
    expect_zero_downtime,
)

pytestmark = [pytest.mark.smoke, pytest.mark.rollout, pytest.mark.concurrent, pytest.mark.rollback]


def test_rollout_is_complete(service: str, kube: Kube, env_config: EnvConfig, run: Run) -> None:
    """Runbook Step 3 `kubectl rollout status`: every replica updated, ready and available, within the rollout deadline."""
    name, deadline = env_config.deployment_of(service), env_config.kubernetes.rollout_deadline_seconds
    if env_config.service(service).workload == "deployment":
        expect_rollout_complete(kube, name, deadline)
        return
    expect_canary_healthy(expect_rollout_settled(kube, name, run.canary_step, deadline), run.canary_step)


def test_pods_are_healthy(workload: dict[str, Any], kube: Kube) -> None:
    """Runbook Step 3: no CrashLoopBackOff, no ImagePullBackOff, no restarts since the rollout, READY = desired replicas."""
    expect_pods_healthy(kube, workload)


def test_runs_the_release_image(service: str, workload: dict[str, Any], env_config: EnvConfig, cli_release_version: str | None) -> None:
    """Runbook Step 3: the running image tag is the release's version."""
    expected = env_config.expected_version(service, cli_release_version)
    if expected is None:
        pytest.skip("no release version given (--release-version) nor pinned in the env config")
    source = "--release-version" if cli_release_version else f"pinned in {env_config.source}"
    expect_release_image(workload, env_config.deployment_of(service), expected, source)


def test_zero_downtime_settings(workload: dict[str, Any]) -> None:
    """Runbook Section 8: readiness/liveness probes on the contract paths, RollingUpdate, a termination grace period."""
    expect_zero_downtime(workload)
