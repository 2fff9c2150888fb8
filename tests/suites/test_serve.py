"""`python -m polycheck serve` answers Argo's Web provider with the run's verdict, and the Web-provider
AnalysisTemplate turns GO into success, NO-GO into failure and INCONCLUSIVE into neither (a paused Rollout)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import yaml

from polycheck.serve import verdict_of
from tests.support.serve import serve, server  # noqa: F401 - server is a fixture
from tests.support.stack_control import StackControl
from tests.support.suite_runner import REPO

TEMPLATE = REPO / "deploy" / "base" / "analysis-template-web.yaml"


def argo_phase(template: dict[str, Any], answer: dict[str, Any]) -> str:
    """What Argo makes of one Web-provider measurement: the jsonPath's value against the two conditions."""
    (metric,) = template["spec"]["metrics"]
    path = re.fullmatch(r"\{\$\.(\w+)\}", metric["provider"]["web"]["jsonPath"])
    assert path, metric["provider"]["web"]["jsonPath"]
    result = answer[path.group(1)]

    def holds(condition: str) -> bool:
        match = re.fullmatch(r'result == "([^"]*)"', condition)
        assert match, f"condition {condition!r} is not of the form the test evaluates"
        return result == match.group(1)

    if holds(metric["successCondition"]):
        return "Successful"
    if holds(metric["failureCondition"]):
        return "Failed"
    return "Inconclusive"


def test_verdicts_follow_the_exit_codes() -> None:
    assert [verdict_of(code) for code in (0, 1, 6, 2, 4, 5, -1)] == ["GO", "NO-GO", "INCONCLUSIVE"] + ["INCONCLUSIVE"] * 4


def test_healthy_is_go_and_a_broken_service_is_no_go(server: str, stack: StackControl) -> None:
    template = yaml.safe_load(TEMPLATE.read_text())
    healthy = httpx.get(f"{server}/analysis", timeout=120).json()
    assert (healthy["verdict"], healthy["exit_code"]) == ("GO", 0), healthy
    assert argo_phase(template, healthy) == "Successful"
    stack.set_fault("order", "down")
    broken = httpx.get(f"{server}/analysis?canary-step=20", timeout=120).json()
    assert (broken["verdict"], broken["exit_code"]) == ("NO-GO", 1), broken
    assert "--canary-step" in broken["args"] and "20" in broken["args"] and "--rollback" in broken["args"] and "canary" == broken["args"][broken["args"].index("--purpose") + 1]
    assert argo_phase(template, broken) == "Failed"
    assert httpx.get(f"{server}/analysis?canary-step=x", timeout=10).status_code == 400


def test_a_run_that_cannot_measure_is_inconclusive_for_argo(tmp_path: Path) -> None:
    text = (REPO / "envs" / "prod.toml").read_text()
    for name in ("auth", "product", "inventory", "order", "payment", "notification", "search", "gateway"):
        text = text.replace(f"http://{name}-service.polyshop.svc.cluster.local:8080", "http://127.0.0.1:9")
    (tmp_path / "unreachable.toml").write_text(text)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc, url = serve(tmp_path, env, "--env", "unreachable", "--marker", "smoke", "--", f"--env-dir={tmp_path}",
                      f"--rollback-log={tmp_path / 'log'}", "suites/test_health.py")
    try:
        answer = httpx.get(f"{url}/analysis?canary-step=20", timeout=120).json()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert (answer["verdict"], answer["exit_code"]) == ("INCONCLUSIVE", 6), answer
    assert argo_phase(yaml.safe_load(TEMPLATE.read_text()), answer) == "Inconclusive"
