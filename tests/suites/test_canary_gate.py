"""The canary gate (runbook Section 2.3) against a real Prometheus and canaries paused at their steps in the simulator,
replica-based (no traffic routing: Argo sets no status.canary.weights) and traffic-routed."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from polycheck.core.polling import poll
from polycheck.clients.prometheus import PrometheusClient
from polycheck.doubles.promserver import LocalPrometheus
from tests.support.stack_control import StackControl
from tests.support.suite_runner import run_suites
from tests.support.traffic import shoppers

SUITE = "suites/test_canary.py"
ROLLOUT_SUITE = "suites/test_rollout.py"
CHECK = "test_canary_error_rate_within_limit[payment]"
ARGO = ("argoproj.io", "v1alpha1", "polyshop", "rollouts", "payment-service")
STEPS = [{"setWeight": 5}, {"pause": {}}, {"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}},
         {"setWeight": 100}]
PAUSE_AFTER = {5: 1, 20: 3, 50: 5}  # the step index of the pause that holds the canary at a weight
MODES = {"replica-based": "replica-canary", "traffic-routed": "traffic-routing"}  # the simulator's kube faults


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


def start_canary(stack: StackControl, mode: str, tag: str) -> dict[str, Any]:
    """Make payment's Rollout `mode`, roll out payment `tag` (a tag of its own: a pod hash no other test has data
    for) with steps 5 → 20 → 50 → 100 that pause until promoted, and wait until it holds at 5%."""
    stack.kube_fault("payment", MODES[mode])
    template = payment_rollout(stack)["spec"]["template"]
    template["spec"]["containers"][0]["image"] = f"registry.polyshop.example/payment-service:{tag}"
    rollouts(stack).patch_namespaced_custom_object(*ARGO, {"spec": {"template": template, "strategy": {"canary": {"steps": STEPS}}}})
    return paused_at(stack, PAUSE_AFTER[5])


def paused_at(stack: StackControl, index: int) -> dict[str, Any]:
    return poll(lambda: payment_rollout(stack)["status"],
                lambda s: s.get("phase") == "Paused" and s.get("currentStepIndex") == index and s.get("stableRS") != s.get("currentPodHash"),
                timeout=15, what=f"payment canary paused at step {index}", describe=lambda s: f"phase {s.get('phase')} step {s.get('currentStepIndex')}")


def promote(stack: StackControl) -> None:
    """`kubectl argo rollouts promote`: clear the pause conditions through the status subresource."""
    rollouts(stack).patch_namespaced_custom_object_status(*ARGO, {"status": {"pauseConditions": None}})


def abort(stack: StackControl) -> None:
    """`kubectl argo rollouts abort`: status.abort=true through the status subresource."""
    rollouts(stack).patch_namespaced_custom_object_status(*ARGO, {"status": {"abort": True}})


CANARY_EVIDENCE = 70  # canary requests in the 15 s window: above canary.min_requests (50)


@pytest.fixture(autouse=True)
def customers(stack: StackControl) -> Any:
    """Customers' payment traffic all through each test, split by the stack between the stable and canary pods."""
    with shoppers(stack.stack.info.services, per_second=100, only=("payment",)):
        yield


def canary_traffic(stack: StackControl, prometheus: LocalPrometheus, pod_hash: str, errors: bool = False) -> None:
    """Send payment requests until Prometheus shows the canary's pods answering enough API requests for the gate
    (canary.min_requests), and answering 5xx when `errors`: a new series needs two scrapes before it has a rate."""
    selector = f'service="payment",rollouts_pod_template_hash="{pod_hash}",route!~"/metrics|/health.*"'
    counted = f"sum(increase(http_requests_total{{{selector}}}[15s]))"
    erring = f'sum(rate(http_requests_total{{{selector},status=~"5.."}}[15s]))'

    def drive_and_query() -> tuple[float, float]:
        drive_payment_traffic(stack, 60)
        values = [sum(s.value for s in client.query(q, allow_empty=True)) for q in (counted, erring)]
        return values[0], values[1]

    with PrometheusClient(prometheus.url, 5) as client:
        poll(drive_and_query, lambda v: v[0] >= CANARY_EVIDENCE and (v[1] > 0 or not errors), timeout=45, interval=0.3,
             max_interval=0.5, what=f"{counted} >= {CANARY_EVIDENCE}" + (f" and {erring} above 0" if errors else ""),
             describe=lambda v: f"{v[0]:.0f} canary requests, 5xx rate {v[1]:.3g}")


def rollback_records(log: Path, step: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if f'"{step}"' in line] if log.exists() else []


def drive_payment_traffic(stack: StackControl, count: int = 200) -> None:
    url = stack.stack.info.services["payment"] + "/api/payments/polycheck-probe"
    with httpx.Client(timeout=10) as session, ThreadPoolExecutor(8) as pool:  # one client: keep-alive connections
        list(pool.map(lambda _: session.get(url), range(count)))


def run_gate(stack: StackControl, env_dir: Path, log: Path, *extra: str) -> Any:
    return run_suites("-m", "canary", SUITE, f"--env-dir={env_dir}", f"--rollback-log={log}", *extra, stack_file=stack.stack_file)


def test_no_canary_in_progress_is_inconclusive_never_go(stack: StackControl, env_dir: Path, tmp_path: Path) -> None:
    """Nothing to judge is not a pass: the step is NOT RUN and the run INCONCLUSIVE (exit 6), so Argo pauses instead of
    promoting (also on the local stack); --allow-not-run canary accepts it."""
    result = run_gate(stack, env_dir, tmp_path / "log")
    assert result.returncode == 6 and result.cases[CHECK].outcome == "skipped", result.describe()
    assert "no canary of payment-service in progress" in result.cases[CHECK].message
    assert "NOT RUN      Section 2.3 canary analysis: 1 check(s) skipped" in result.output, result.describe()
    assert "INCONCLUSIVE: env local" in result.output, result.describe()
    allowed = run_gate(stack, env_dir, tmp_path / "log2", "--allow-not-run=canary")
    assert allowed.returncode == 0, allowed.describe()
    assert "NOT RUN (allowed)" in allowed.output, allowed.describe()


def test_healthy_canary_passes_its_step(stack: StackControl, env_dir: Path, tmp_path: Path, prometheus: LocalPrometheus) -> None:
    status = start_canary_paused_at_20(stack)
    canary_traffic(stack, prometheus, status["currentPodHash"])
    result = run_gate(stack, env_dir, tmp_path / "log", "--canary-step", "20")
    assert result.returncode == 0 and result.ids("passed") == {CHECK}, result.describe()
    unnamed = run_gate(stack, env_dir, tmp_path / "log")  # no --canary-step: the gate judges the step the Rollout is at
    assert unnamed.returncode == 0 and unnamed.ids("passed") == {CHECK}, unnamed.describe()
    log = tmp_path / "wrong.jsonl"
    wrong_step = run_gate(stack, env_dir, log, "--canary-step", "50")
    assert wrong_step.returncode == 6 and wrong_step.ids("inconclusive") == {CHECK}, wrong_step.describe()
    message = wrong_step.cases[CHECK].message
    assert "carries 20% of traffic" in message and "this analysis gates the 50% step: it ran at the wrong moment" in message, message
    assert not rollback_records(log, "argo-abort") and payment_rollout(stack)["status"].get("abort") is None


@pytest.mark.parametrize("mode", list(MODES))
def test_healthy_canary_passes_each_step(mode: str, stack: StackControl, env_dir: Path, tmp_path: Path, prometheus: LocalPrometheus) -> None:
    """The analysis of each step (5, 20, 50%) passes a healthy canary: the gate, and the rollout checks at that step."""
    tag = f"1.3.1-{mode}"
    log = tmp_path / "log.jsonl"
    status = start_canary(stack, mode, tag)
    for weight in (5, 20, 50):
        if weight != 5:
            promote(stack)
            status = paused_at(stack, PAUSE_AFTER[weight])
        assert ("weights" in status["canary"]) == (mode == "traffic-routed"), status["canary"]
        canary_traffic(stack, prometheus, status["currentPodHash"])
        result = run_suites("-m", "canary or rollout", SUITE, ROLLOUT_SUITE, "-k", "payment", "--canary-step", str(weight),
                            "--release-version", tag, f"--env-dir={env_dir}", f"--rollback-log={log}", stack_file=stack.stack_file)
        assert result.returncode == 0 and CHECK in result.ids("passed"), f"at {weight}%: {result.describe()}"
        assert {"test_rollout_is_complete[payment]", "test_pods_are_healthy[payment]"} <= result.ids("passed"), result.describe()
    assert not rollback_records(log, "argo-abort")
    assert payment_rollout(stack)["status"].get("abort") is None


@pytest.mark.parametrize("mode", list(MODES))
def test_erring_canary_fails_the_step_and_is_aborted(mode: str, stack: StackControl, env_dir: Path, tmp_path: Path, prometheus: LocalPrometheus) -> None:
    status = start_canary(stack, mode, f"1.3.1-{mode}-erring")
    promote(stack)
    status = paused_at(stack, PAUSE_AFTER[20])
    # its API errs (a 500 on /metrics too would fail the scrape: up == 0, and the gate would fail on that at once)
    stack.set_fault("payment", "errors", ratio=0.5, pods="canary", paths=["/api/"])
    canary_traffic(stack, prometheus, status["currentPodHash"], errors=True)
    log = tmp_path / "log.jsonl"
    result = run_gate(stack, env_dir, log, "--canary-step", "20", "--purpose=canary")  # as the AnalysisTemplate runs it
    assert result.failed == {CHECK}, result.describe()
    message = result.cases[CHECK].message
    # changed with the replica-based canary: the weight's source and the canary's share of ready pods beside it
    source = "set on the traffic router" if mode == "traffic-routed" else r"setWeight in force at step 3/7"
    assert re.search(rf"payment canary \(\w+, 20% of traffic; {source}; canary 1 of 3 ready pods = 33%\) 5xx ratio .* "
                     r"is above 0\.02 \(2%\)", message), message
    assert "runbook Section 2.3" in message and "graph:" in message
    assert re.search(r"rollout: phase Paused .*canary \w+", message), message  # the Rollout's status, also in the escalation
    aborted = rollback_records(log, "argo-abort")
    assert len(aborted) == 1 and aborted[0]["outcome"] == "done", aborted
    assert aborted[0]["rule"] == "purpose canary: payment's Rollout has a canary in progress: abort it only", aborted
    escalated = rollback_records(log, "escalation")
    assert escalated and all("runbook Section 9: deployment failure during canary" in r["detail"] for r in escalated), escalated
    poll(lambda: payment_rollout(stack)["status"], lambda s: s.get("phase") == "Degraded" and s.get("abort") is True,
         timeout=10, what="payment canary aborted")


def test_an_aborted_canary_is_reported_and_not_aborted_again(stack: StackControl, env_dir: Path, tmp_path: Path, prometheus: LocalPrometheus) -> None:
    """A later run finds the canary aborted: it reports when and by whom, judges nothing and aborts nothing."""
    status = start_canary(stack, "replica-based", "1.3.1-aborted")
    stack.set_fault("payment", "errors", ratio=0.5, pods="canary", paths=["/api/"])
    canary_traffic(stack, prometheus, status["currentPodHash"], errors=True)  # judged, this canary would fail the gate
    abort(stack)
    aborted = poll(lambda: payment_rollout(stack)["status"], lambda s: s.get("phase") == "Degraded", timeout=10,
                   what="payment canary aborted")
    log = tmp_path / "log.jsonl"
    result = run_gate(stack, env_dir, log, "--canary-step", "5")
    assert result.returncode == 6 and result.cases[CHECK].outcome == "skipped", result.describe()  # nothing to gate: never GO
    message = result.cases[CHECK].message
    assert f"the canary {aborted['currentPodHash']} was aborted at {aborted['abortedAt']} by a client setting status.abort" in message, message
    assert "Rollout aborted update to revision 3" in message and "not aborted again" in message, message
    assert not rollback_records(log, "argo-abort")
    # the rollout checks fail for an aborted release; their rollback finds it aborted already and does not abort again
    rollout_log = tmp_path / "rollout.jsonl"
    checks = run_suites("-m", "rollout", ROLLOUT_SUITE, "-k", "payment", f"--env-dir={env_dir}", f"--rollback-log={rollout_log}",
                        "--released=payment", stack_file=stack.stack_file)
    assert "test_rollout_is_complete[payment]" in checks.failed, checks.describe()
    again = rollback_records(rollout_log, "argo-abort")
    assert again and all(r["outcome"] == "skipped" and "not aborted again" in r["detail"] for r in again), again
    after = payment_rollout(stack)["status"]
    assert (after["abort"], after["abortedAt"], after["phase"]) == (True, aborted["abortedAt"], "Degraded")


def test_a_canary_judged_on_too_few_requests_is_inconclusive_and_not_aborted(
    stack: StackControl, env_dir: Path, tmp_path: Path, prometheus: LocalPrometheus
) -> None:
    """The same erring canary that fails the gate, judged against a minimum its requests do not reach: INCONCLUSIVE
    (exit 6) with the count, no abort, no rollback."""
    status = start_canary(stack, "replica-based", "1.3.1-too-few")
    stack.set_fault("payment", "errors", ratio=0.5, pods="canary", paths=["/api/"])
    canary_traffic(stack, prometheus, status["currentPodHash"], errors=True)
    (env_dir / "local.toml").write_text((env_dir / "local.toml").read_text() + "\n[canary]\nmin_requests = 100000\n")
    log = tmp_path / "log.jsonl"
    result = run_gate(stack, env_dir, log, "--canary-step", "5")
    assert result.returncode == 6 and result.ids("inconclusive") == {CHECK}, result.describe()
    message = result.cases[CHECK].message
    assert re.search(r"5xx ratio .* over \d+ requests in the last 15s: fewer than canary.min_requests=100000 requests", message), message
    assert "nothing is aborted on it" in message, message
    assert not rollback_records(log, "argo-abort") and payment_rollout(stack)["status"].get("abort") is None


def test_a_slower_canary_fails_its_step_by_the_rank_test(stack: StackControl, env_dir: Path, tmp_path: Path,
                                                         prometheus: LocalPrometheus) -> None:
    """A canary whose API answers some 25 ms later than the stable's (several times slower on this stack), with no
    error at all: the fixed 5xx limit cannot see it; the Mann-Whitney U test over the histograms fails the 20% step."""
    start_canary(stack, "replica-based", "1.3.1-slower")  # a tag of its own: a pod hash no other test has data for
    promote(stack)
    status = paused_at(stack, PAUSE_AFTER[20])
    stack.set_fault("payment", "slow", seconds=0.025, pods="canary", paths=["/api/"])
    canary_traffic(stack, prometheus, status["currentPodHash"])
    result = run_gate(stack, env_dir, tmp_path / "log.jsonl", "--canary-step", "20")
    assert result.failed == {CHECK}, result.describe()
    message = result.cases[CHECK].message
    assert "is slower than the stable version" in message and "Mann-Whitney U test over the histogram buckets" in message, message
    found = re.search(r"median ([\d.]+) ms \((\d+) requests\) vs ([\d.]+) ms \((\d+)\).*p = ([\d.e-]+)", message)
    assert found and float(found.group(1)) > 3 * float(found.group(3)) and float(found.group(5)) < 0.05, message


@pytest.mark.parametrize("ratio, limit", [(0.05, "in place"), (0.1, "aside")])
def test_a_canary_erring_against_a_zero_error_stable_fails_its_20_percent_step(
        ratio: float, limit: str, stack: StackControl, env_dir: Path, tmp_path: Path, prometheus: LocalPrometheus) -> None:
    """5 % of the canary's API answers 500, the stable's none: the step fails (the fixed 2 % limit or the comparison,
    whichever sees it first). 10 % with the fixed limit set aside: the comparison alone fails it (significant, and far
    above the 1-point effect size), naming both ratios, the test, its p-value and the counts."""
    start_canary(stack, "replica-based", f"1.3.1-erring-{int(ratio * 100)}")
    promote(stack)
    status = paused_at(stack, PAUSE_AFTER[20])
    stack.set_fault("payment", "errors", ratio=ratio, pods="canary", paths=["/api/"])
    canary_traffic(stack, prometheus, status["currentPodHash"], errors=True)
    if limit == "aside":
        text = (env_dir / "local.toml").read_text().replace("[prometheus]\n", "[prometheus]\nthresholds = { canary_error_rate = 0.5 }\n", 1)
        (env_dir / "local.toml").write_text(text)
    result = run_gate(stack, env_dir, tmp_path / "log.jsonl", "--canary-step", "20")
    assert result.failed == {CHECK}, result.describe()
    message = result.cases[CHECK].message
    if limit == "in place":
        assert "is above 0.02" in message or "two-proportion z-test" in message, message
        return
    assert "errs more than the stable version" in message and "two-proportion z-test" in message, message
    assert re.search(r"vs 0\.00% \(0 of \d+\)", message) and re.search(r"p = [\d.e-]+", message), message
