"""Runbook Sections 2.2, 5 and 7: may this change be deployed now? (`pytest -m predeploy --env prod --base-ref ...`)"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from collections.abc import Callable

import pytest

from polycheck.core.config import EnvConfig
from polycheck.core.failures import inconclusive
from polycheck.checks.gates import (
    Change, DeployRequest, GitHub, GitHubUnavailable, approval_gate, ci_gate, enforce, high_risk_gate, hotfix_gate,
    openapi_gate, window_gate,
)

pytestmark = pytest.mark.predeploy


def test_deploy_is_inside_a_deployment_window(env_config: EnvConfig, deploy_request: DeployRequest) -> None:
    """Section 7: weekdays 09:00-17:00, no Friday deploys after 15:00, no weekend deploys unless emergency."""
    print(enforce(window_gate(env_config.gates, deploy_request)))


def test_high_risk_change_has_sre_approval(env_config: EnvConfig, deploy_request: DeployRequest, change: Change,
                                           pr_labels: tuple[str, ...]) -> None:
    """Section 7: schema migrations, payment provider updates and Kafka partition changes require SRE approval."""
    print(enforce(high_risk_gate(env_config.gates, replace(deploy_request, labels=pr_labels), change)))


def test_hotfix_changes_at_most_one_file(env_config: EnvConfig, deploy_request: DeployRequest, change: Change) -> None:
    """Section 2.2: a hotfix/* or release/* branch is at most one file change unless approved."""
    print(enforce(hotfix_gate(env_config.gates, deploy_request, change)))


def test_route_changes_come_with_the_openapi_contract(env_config: EnvConfig, change: Change) -> None:
    """Section 5: OpenAPI updated — a change to the routes changes the OpenAPI file with it."""
    print(enforce(openapi_gate(env_config.gates, change)))


def test_pull_request_is_approved(github: GitHub, deploy_request: DeployRequest) -> None:
    """Section 3 Step 1 and Section 5: the PR is approved (code reviewed)."""
    print(enforce(_ask_github(approval_gate, github, deploy_request)))


def test_ci_is_green(github: GitHub, deploy_request: DeployRequest) -> None:
    """Section 3 Step 1: tests pass — every check run and status of the PR's head commit is green."""
    print(enforce(_ask_github(ci_gate, github, deploy_request)))


def _ask_github(gate: Callable[[GitHub, int], Any], github: GitHub, deploy_request: DeployRequest) -> Any:
    """A gate judged from GitHub's answers about the PR; GitHub not answering makes the gate inconclusive."""
    try:
        return gate(github, deploy_request.pull_request or 0)
    except GitHubUnavailable as exc:
        inconclusive(f"cannot ask GitHub: {exc}")
