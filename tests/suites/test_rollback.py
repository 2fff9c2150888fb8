"""Rollback hooks end to end over real HTTP: a failing marked check rolls its service back at once, once per run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime, timedelta, UTC
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from tests.support.stack_control import StackControl
from tests.support.receiver import receiver  # noqa: F401 - a fixture
from tests.support.suite_runner import REPO, run_suites
from tests.support.selftest_env import local_env_text

ROLLOUT = "suites/test_rollout.py"
ORDER_ROLLOUT_CHECKS = {
    "test_rollout_is_complete[order]", "test_pods_are_healthy[order]", "test_runs_the_release_image[order]",
}


def audit(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def apps(stack: StackControl) -> k8s.AppsV1Api:
    info = json.loads(stack.stack_file.read_text())
    api = k8s_config.new_client_from_config(config_file=info["kubernetes"]["kubeconfig"], context=info["kubernetes"]["context"])
    return k8s.AppsV1Api(api)


def image_of(stack: StackControl, deployment: str) -> str:
    return apps(stack).read_namespaced_deployment(deployment, "polyshop").spec.template.spec.containers[0].image


def rollout_status(stack: StackControl, name: str) -> dict[str, Any]:
    info = json.loads(stack.stack_file.read_text())
    api = k8s_config.new_client_from_config(config_file=info["kubernetes"]["kubeconfig"], context=info["kubernetes"]["context"])
    return k8s.CustomObjectsApi(api).get_namespaced_custom_object("argoproj.io", "v1alpha1", "polyshop", "rollouts", name)["status"]


def env_with(tmp_path: Path, replacements: dict[str, str]) -> Path:
    """A copy of envs/local.toml with some lines changed, in its own env dir."""
    text = local_env_text()
    for old, new in replacements.items():
        assert old in text, f"{old!r} not in envs/local.toml"
        text = text.replace(old, new)
    (tmp_path / "local.toml").write_text(text)
    return tmp_path


def test_crashloop_rolls_order_back_once_and_a_second_run_passes(stack: StackControl, tmp_path: Path) -> None:
    log = tmp_path / "rollback.jsonl"
    since = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    stack.kube_fault("order", "crashloop")
    assert image_of(stack, "order-service").endswith("1.3.1-crashloop")
    # only order has a ReplicaSet created since the deploy began: it is the one released service
    run = run_suites("-m", "smoke", ROLLOUT, f"--rollback-log={log}", f"--since={since.isoformat()}", stack_file=stack.stack_file)
    assert run.returncode == 1, run.describe()
    assert run.failed and run.failed <= ORDER_ROLLOUT_CHECKS, run.describe()
    # the crash loop fails the pods check (and, unless the rollback it fires lands first, the rollout check)
    assert {c for c in run.failed} & {"test_pods_are_healthy[order]", "test_rollout_is_complete[order]"}, run.describe()
    # a check the crash loop fails cannot pass on the bad revision: if one passed, it judged the rolled-back one, and
    # the run says so, naming it (checks the crash loop does not touch may pass before or after: no evidence either way)
    late = [name for name in ORDER_ROLLOUT_CHECKS if run.cases[name].outcome == "passed"]
    note = "passed after its rollback was applied: they judged the rolled-back revision"
    assert not late or (note in run.output and all(name in run.output.split(note, 1)[1] for name in late)), run.output
    records = audit(log)
    decisions = [r for r in records if r["step"] == "decision" and r["outcome"] == "auto"]
    assert [d["service"] for d in decisions] == ["order"], records
    undo = [r for r in records if r["step"] == "kubernetes-undo"]
    assert len(undo) == 1 and undo[0]["outcome"] == "done", records
    assert "1.3.0" in undo[0]["detail"], undo
    assert all(r["outcome"] == "skipped" for r in records if r["step"] == "decision" and r not in decisions)
    assert image_of(stack, "order-service").endswith(":1.3.0")
    assert "ROLLED BACK order" in run.output
    assert "released in this run: order (from Kubernetes" in run.output, run.output
    assert run.allure_dir is not None
    reported = [json.loads(p.read_text()) for p in run.allure_dir.glob("*-result.json")]
    assert not [r for r in reported if r["name"].startswith("rollback of")], "a rollback is no test case of its own"
    steps = [s for r in reported for s in r.get("steps") or [] if s["name"] == "rollback decision for order"]
    assert len(steps) == 1, [r.get("steps") for r in reported if r.get("steps")]
    assert any(sub["name"].startswith("kubernetes-undo: done") for sub in steps[0]["steps"]), steps
    assert (run.allure_dir / steps[0]["attachments"][0]["source"]).exists()
    again = run_suites("-m", "smoke", ROLLOUT, f"--rollback-log={log}", "--released=order", stack_file=stack.stack_file)
    assert again.returncode == 0, again.describe()
    # the next run reviews the decision: the check that decided passes on the restored revision -> confirmed
    reviews = [r for r in audit(log) if r["step"] == "review"]
    assert [(r["check"], r["outcome"], r["reviewed_run"]) for r in reviews] == [
        (decisions[0]["check"], "confirmed", decisions[0]["run_id"])], reviews
    tally = subprocess.run([sys.executable, "-m", "polycheck", "decisions", "--env", "local", f"--audit-log={log}", "--json"],
                           cwd=REPO, capture_output=True, text=True, timeout=60)
    assert json.loads(tally.stdout)["check"][decisions[0]["check"]] == {"decided": 1, "confirmed": 1, "refuted": 0,
                                                                        "pending": 0}, tally.stdout + tally.stderr


def test_dry_run_logs_exactly_what_it_would_do_and_changes_nothing(stack: StackControl, tmp_path: Path) -> None:
    log = tmp_path / "rollback.jsonl"
    stack.kube_fault("order", "crashloop")
    run = run_suites("-m", "smoke", ROLLOUT, "--released=order", "-k", "order", "--rollback", "dry-run", f"--rollback-log={log}", stack_file=stack.stack_file)
    assert run.returncode == 1, run.describe()
    planned = [r for r in audit(log) if r["step"] == "kubernetes-undo"]
    assert len(planned) == 1 and planned[0]["outcome"] == "planned", audit(log)
    assert "would kubectl rollout undo deploy/order-service -n polyshop" in planned[0]["detail"]
    assert "1.3.1-crashloop" in planned[0]["detail"] and "1.3.0" in planned[0]["detail"]
    assert image_of(stack, "order-service").endswith("1.3.1-crashloop")


def test_off_fires_nothing(stack: StackControl, tmp_path: Path) -> None:
    log = tmp_path / "rollback.jsonl"
    stack.kube_fault("order", "crashloop")
    run = run_suites("-m", "smoke", ROLLOUT, "--released=order", "-k", "order", "--rollback", "off", f"--rollback-log={log}", stack_file=stack.stack_file)
    assert run.returncode == 1, run.describe()
    assert [r["outcome"] for r in audit(log) if r["step"] == "decision"][0] == "off"
    assert not [r for r in audit(log) if r["step"] == "kubernetes-undo"]
    assert image_of(stack, "order-service").endswith("1.3.1-crashloop")


def test_set_image_puts_back_the_previous_version(stack: StackControl, tmp_path: Path) -> None:
    log = tmp_path / "rollback.jsonl"
    env_dir = env_with(tmp_path, {'actions = ["kubernetes-undo"]': 'actions = ["kubernetes-set-image"]'})
    stack.kube_fault("order", "image-pull")
    run = run_suites("-m", "smoke", ROLLOUT, "--released=order", "-k", "order", f"--env-dir={env_dir}", f"--rollback-log={log}", stack_file=stack.stack_file)
    assert run.returncode == 1, run.describe()
    done = [r for r in audit(log) if r["step"] == "kubernetes-set-image"]
    assert len(done) == 1 and done[0]["outcome"] == "done", audit(log)
    assert "order-service=registry.polyshop.example/order-service:1.3.0" in done[0]["detail"]
    assert image_of(stack, "order-service").endswith(":1.3.0")


def test_degraded_canary_is_aborted(stack: StackControl, tmp_path: Path) -> None:
    log = tmp_path / "rollback.jsonl"
    stack.kube_fault("payment", "canary-degraded")
    run = run_suites("-m", "smoke", ROLLOUT, "--released=payment", "-k", "payment", f"--rollback-log={log}", stack_file=stack.stack_file)
    assert run.returncode == 1, run.describe()
    assert "test_rollout_is_complete[payment]" in run.failed, run.describe()
    aborted = [r for r in audit(log) if r["step"] == "argo-abort"]
    assert len(aborted) == 1 and aborted[0]["outcome"] == "done", audit(log)
    assert rollout_status(stack, "payment-service").get("abort") is True


def test_webhook_and_escalation_receive_the_payload(stack: StackControl, tmp_path: Path, receiver: list[dict[str, Any]]) -> None:
    url = receiver[0]["url"]
    log = tmp_path / "rollback.jsonl"
    env_dir = env_with(tmp_path, {
        'actions = ["kubernetes-undo"]\n': f'actions = ["webhook", "kubernetes-undo"]\nwebhook_url = "{url}/rollback"\n',
        'on_failure_of = ["payment", "order"]': f'on_failure_of = ["payment", "order"]\nwebhooks = ["{url}/oncall", "{url}/sre-lead"]',
    })
    stack.kube_fault("order", "crashloop")
    run = run_suites("-m", "smoke", ROLLOUT, "-k", "order", f"--env-dir={env_dir}", f"--rollback-log={log}",
                     "--release-version", "1.3.0", "--released=order", stack_file=stack.stack_file)
    assert run.returncode == 1, run.describe()
    posts = receiver[1:]
    assert [p["path"] for p in posts] == ["/rollback", "/oncall", "/sre-lead"], posts
    rollback = posts[0]
    assert rollback["event"] == "rollback" and rollback["service"] == "order" and rollback["release"] == "1.3.0"
    assert rollback["check"].startswith("suites/test_rollout.py::") and rollback["run_id"] and rollback["reason"]
    assert posts[1]["event"] == "escalation" and "rollback fired" in posts[1]["why"]
    assert image_of(stack, "order-service").endswith(":1.3.0")


def test_a_failing_rollback_is_loud_and_never_hides_the_check(stack: StackControl, tmp_path: Path) -> None:
    log = tmp_path / "rollback.jsonl"
    env_dir = env_with(tmp_path, {'actions = ["kubernetes-undo"]\n': 'actions = ["command"]\ncommand = ["false"]\n'})
    stack.kube_fault("order", "crashloop")
    run = run_suites("-m", "smoke", ROLLOUT, "--released=order", "-k", "order", f"--env-dir={env_dir}", f"--rollback-log={log}", stack_file=stack.stack_file)
    assert run.returncode == 1 and "test_rollout_is_complete[order]" in run.failed, run.describe()
    failed = [r for r in audit(log) if r["step"] == "command"]
    assert failed and failed[0]["outcome"] == "failed" and "exited 1" in failed[0]["detail"]
    assert "ROLLBACK FAILED order" in run.output


def test_rollback_fires_once_per_service_under_xdist(stack: StackControl, tmp_path: Path) -> None:
    log = tmp_path / "rollback.jsonl"
    stack.kube_fault("order", "crashloop")
    run = run_suites("-m", "smoke", ROLLOUT, "--released=order", "-n", "2", f"--rollback-log={log}", stack_file=stack.stack_file)
    assert run.returncode == 1, run.describe()
    fired = [r for r in audit(log) if r["step"] == "kubernetes-undo"]
    assert len(fired) == 1 and fired[0]["service"] == "order", audit(log)


def test_unreachable_cluster_is_inconclusive_naming_the_context(stack: StackControl, tmp_path: Path) -> None:
    """No cluster reachable: every rollout check is inconclusive (exit 6), quickly, naming the context and kubeconfig."""
    info = json.loads(stack.stack_file.read_text())
    kubeconfig = Path(info["kubernetes"]["kubeconfig"]).read_text()
    dead = tmp_path / "dead-kubeconfig"
    dead.write_text(re.sub(r"server: \S+", "server: http://127.0.0.1:9", kubeconfig))
    assert "127.0.0.1:9\n" in dead.read_text()
    info["kubernetes"]["kubeconfig"] = str(dead)
    stack_file = tmp_path / "stack.json"
    stack_file.write_text(json.dumps(info))
    run = run_suites("-m", "smoke", ROLLOUT, "--rollback", "off", f"--rollback-log={tmp_path / 'log'}", stack_file=stack_file)
    assert run.returncode == 6 and run.cases and run.ids("inconclusive") == set(run.cases), run.describe()
    for name, case in run.cases.items():
        assert "unreachable" in case.message and "context polyshop-local" in case.message and str(dead) in case.message, (name, case.message)
        assert "Traceback" not in case.message
    assert run.seconds < 90, run.describe()


def test_shadow_mode_records_what_it_would_roll_back_and_the_next_runs_review_it(stack: StackControl, tmp_path: Path) -> None:
    """--rollback shadow: the decision is recorded, nothing is rolled back; a later run where the check passes without
    a rollback refutes it (the failure was transient), one where it still fails confirms it."""
    log = tmp_path / "rollback.jsonl"
    args = ("-m", "smoke", "suites/test_health.py", "-k", "search", "--released=search", "--rollback", "shadow",
            f"--rollback-log={log}")
    stack.set_fault("search", "wrong_version", version="1.2.9")
    first = run_suites(*args, stack_file=stack.stack_file)
    assert first.returncode == 1, first.describe()
    decisions = [r for r in audit(log) if r["step"] == "decision"]
    assert [(d["service"], d["outcome"]) for d in decisions] == [("search", "shadow")], audit(log)
    assert all(r["outcome"] in ("planned", "skipped") for r in audit(log) if r["step"] not in ("decision", "escalation")), audit(log)
    assert "SHADOW: WOULD ROLL BACK search" in first.output
    assert image_of(stack, "search-service").endswith(":1.3.0"), "shadow mode changes nothing"
    still = run_suites(*args, stack_file=stack.stack_file)  # the fault lasts: the decision was warranted
    assert still.returncode == 1, still.describe()
    stack.clear()
    passing = run_suites(*args, stack_file=stack.stack_file)  # the second run's decision: the check passes without one
    assert passing.returncode == 0, passing.describe()
    reviews = [r for r in audit(log) if r["step"] == "review"]
    assert [(r["reviewed_run"], r["outcome"]) for r in reviews] == [
        (decisions[0]["run_id"], "confirmed"), (reviews[1]["reviewed_run"], "refuted")], reviews
    assert reviews[1]["reviewed_run"] != decisions[0]["run_id"] and "passes without a rollback" in reviews[1]["detail"]
    assert "reviewed: run" in passing.output and "REFUTED" in passing.output, passing.output[-2000:]
