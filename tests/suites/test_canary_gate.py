"""The canary gate (runbook Section 2.3) against a real Prometheus and a canary paused at 20% in the simulator."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from polycheck.polling import poll
from polycheck.promserver import LocalPrometheus
from tests.support.prometheus_wait import until_query
from tests.support.stack_control import StackControl
from tests.support.suite_runner import run_suites

SUITE = "suites/test_canary.py"
CHECK = "test_canary_error_rate_within_limit[payment]"


def rollouts(stack: StackControl) -> k8s.CustomObjectsApi:
    info = json.loads(stack.stack_file.read_text())
    api = k8s_config.new_client_from_config(config_file=info["kubernetes"]["kubeconfig"], context=info["kubernetes"]["context"])
    return k8s.CustomObjectsApi(api)


def payment_rollout(stack: StackControl) -> dict[str, Any]:
    return rollouts(stack).get_namespaced_custom_object("argoproj.io", "v1alpha1", "polyshop", "rollouts", "payment-service")


def start_canary_paused_at_20(stack: StackControl) -> dict[str, Any]:
    """Roll out payment 1.3.1 with steps 20% → pause (until promoted) → 100%, and wait until it holds at 20%."""
    template = payment_rollout(stack)["spec"]["template"]
    template["spec"]["containers"][0]["image"] = "registry.polyshop.example/payment-service:1.3.1"
    body = {"spec": {"template": template, "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 100}]}}}}
    rollouts(stack).patch_namespaced_custom_object("argoproj.io", "v1alpha1", "polyshop", "rollouts", "payment-service", body)
    return poll(lambda: payment_rollout(stack)["status"], lambda s: s.get("phase") == "Paused" and s.get("stableRS") != s.get("currentPodHash"),
                timeout=15, what="payment canary paused at 20%", describe=lambda s: f"phase {s.get('phase')} step {s.get('currentStepIndex')}")


def drive_payment_traffic(stack: StackControl, count: int = 200) -> None:
    url = stack.stack.info.services["payment"] + "/api/payments/polycheck-probe"
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: httpx.get(url, timeout=10), range(count)))


def run_gate(stack: StackControl, env_dir: Path, log: Path, *extra: str) -> Any:
    return run_suites("-m", "canary", SUITE, f"--env-dir={env_dir}", f"--rollback-log={log}", *extra, stack_file=stack.stack_file)


def test_no_canary_in_progress_is_a_skip_with_the_reason(stack: StackControl, env_dir: Path, tmp_path: Path) -> None:
    result = run_gate(stack, env_dir, tmp_path / "log")
    assert result.cases[CHECK].outcome == "skipped", result.describe()
    assert "no canary of payment-service in progress" in result.cases[CHECK].message


def test_healthy_canary_passes_its_step(stack: StackControl, env_dir: Path, tmp_path: Path, prometheus: LocalPrometheus) -> None:
    status = start_canary_paused_at_20(stack)
    drive_payment_traffic(stack)
    until_query(prometheus, f'sum(rate(http_requests_total{{service="payment",rollouts_pod_template_hash="{status["currentPodHash"]}"}}[15s]))', lambda v: v > 0)
    result = run_gate(stack, env_dir, tmp_path / "log", "--canary-step", "20")
    assert result.returncode == 0 and result.ids("passed") == {CHECK}, result.describe()
    wrong_step = run_gate(stack, env_dir, tmp_path / "log", "--canary-step", "50")
    assert wrong_step.failed == {CHECK}, wrong_step.describe()
    assert "carries 20% of the traffic, but this analysis gates the 50% step" in wrong_step.cases[CHECK].message


def test_erring_canary_fails_the_step_and_is_aborted(stack: StackControl, env_dir: Path, tmp_path: Path, prometheus: LocalPrometheus) -> None:
    status = start_canary_paused_at_20(stack)
    stack.set_fault("payment", "errors", ratio=0.5, pods="canary")
    drive_payment_traffic(stack)
    canary_errors = f'sum(rate(http_requests_total{{service="payment",status=~"5..",rollouts_pod_template_hash="{status["currentPodHash"]}"}}[15s]))'
    until_query(prometheus, canary_errors, lambda v: v > 0)
    log = tmp_path / "log.jsonl"
    result = run_gate(stack, env_dir, log, "--canary-step", "20")
    assert result.failed == {CHECK}, result.describe()
    message = result.cases[CHECK].message
    assert re.search(r"payment canary \(\w+, 20% of traffic\) 5xx ratio .* is above 0\.02 \(2%\)", message), message
    assert "runbook Section 2.3" in message and "graph:" in message
    aborted = [json.loads(line) for line in log.read_text().splitlines() if '"argo-abort"' in line]
    assert len(aborted) == 1 and aborted[0]["outcome"] == "done", aborted
    poll(lambda: payment_rollout(stack)["status"], lambda s: s.get("abort") is True, timeout=10, what="payment canary aborted")
