"""Who may roll back, end to end: a deploy run with an unknown release scope and a scheduled probe roll nothing
back and escalate once; a check that passes on its rerun is FLAKY everywhere it is reported."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
import pytest

from polycheck.doubles.pushserver import LocalPushgateway
from tests.support.receiver import receiver  # noqa: F401 - a fixture
from tests.support.stack_control import StackControl
from tests.support.suite_runner import run_suites
from tests.suites.test_rollback import ORDER_ROLLOUT_CHECKS, ROLLOUT, audit, env_with, image_of

FLAKY_CHECK = "tests/support/checks/flaky_check.py"


def webhooks_env(tmp_path: Path, url: str, *, unknown_scope: str = "escalate") -> Path:
    """envs/local.toml with escalation webhooks to `url` and its unknown_scope opt-in replaced."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    return env_with(tmp_path, {
        'unknown_scope = "all"': f'unknown_scope = "{unknown_scope}"',
        'on_failure_of = ["payment", "order"]': f'on_failure_of = ["payment", "order"]\nwebhooks = ["{url}/oncall"]',
    })


def test_an_unknown_release_scope_rolls_nothing_back_and_escalates_once(
        stack: StackControl, tmp_path: Path, receiver: list[dict[str, Any]]) -> None:
    log = tmp_path / "rollback.jsonl"
    env_dir = webhooks_env(tmp_path, receiver[0]["url"])
    stack.kube_fault("order", "crashloop")
    run = run_suites("-m", "smoke", ROLLOUT, "-k", "order", f"--env-dir={env_dir}", f"--rollback-log={log}",
                     stack_file=stack.stack_file)
    assert run.returncode == 1, run.describe()  # the checks still fail: the release is NO-GO
    records = audit(log)
    assert not [r for r in records if r["step"] == "kubernetes-undo"], records
    assert not [r for r in records if r["step"] == "decision"], records  # no rollback decided
    assert {(r["service"], r["outcome"]) for r in records if r["step"] == "hold"} == {("order", "none")}, records
    assert image_of(stack, "order-service").endswith("1.3.1-crashloop"), "nothing was rolled back"
    posts = [p for p in receiver[1:] if p["path"] == "/oncall"]
    assert len(posts) == 1 and posts[0]["service"] == "order" and "release scope is unknown" in posts[0]["why"], posts
    assert "would run ['kubernetes-undo'] on order" in posts[0]["rule"], posts
    assert "decided by: purpose deploy: the release scope is unknown" in run.output, run.describe()

    opted_in = webhooks_env(tmp_path / "opt-in", receiver[0]["url"], unknown_scope="all")  # the same, opted in: acts
    again = run_suites("-m", "smoke", ROLLOUT, "-k", "order", f"--env-dir={opted_in}", f"--rollback-log={log}",
                       stack_file=stack.stack_file)
    assert again.returncode == 1, again.describe()
    assert [r["outcome"] for r in audit(log) if r["step"] == "kubernetes-undo"] == ["done"], audit(log)


def test_a_probe_pushes_escalates_once_and_never_rolls_back(
        stack: StackControl, tmp_path: Path, receiver: list[dict[str, Any]]) -> None:
    reason = LocalPushgateway.available()
    if reason:
        pytest.skip(reason)
    log = tmp_path / "rollback.jsonl"
    env_dir = webhooks_env(tmp_path, receiver[0]["url"], unknown_scope="all")  # even where a deploy run would act
    stack.kube_fault("order", "crashloop")
    with LocalPushgateway.start() as gateway:
        run = run_suites("-m", "smoke", ROLLOUT, "-k", "order", f"--env-dir={env_dir}", f"--rollback-log={log}",
                         "--purpose=probe", "--released=order", "--push-metrics", gateway.url, stack_file=stack.stack_file)
        families = list(text_string_to_metric_families(httpx.get(f"{gateway.url}/metrics", timeout=5).text))
    assert run.returncode == 1, run.describe()
    success = {s.labels["check"]: s.value for f in families for s in f.samples if s.name == "polyshop_check_success"}
    assert {f"test_rollout::{name}": 0.0 for name in ORDER_ROLLOUT_CHECKS}.items() <= success.items(), success  # pushed
    records = audit(log)
    assert not [r for r in records if r["step"] in ("kubernetes-undo", "argo-abort")], records
    assert image_of(stack, "order-service").endswith("1.3.1-crashloop"), "a probe rolled back"
    posts = [p for p in receiver[1:] if p["path"] == "/oncall"]
    assert len(posts) == 1 and "purpose probe: a scheduled probe escalates and never rolls back" in posts[0]["why"], posts


def test_a_check_that_passes_on_its_rerun_is_flaky_everywhere(stack: StackControl, tmp_path: Path) -> None:
    reason = LocalPushgateway.available()
    if reason:
        pytest.skip(reason)
    reports = tmp_path / "reports"
    with LocalPushgateway.start() as gateway:
        run = run_suites("-c", "pyproject.toml", FLAKY_CHECK, "-p", "no:randomly", "--push-metrics", gateway.url, "-rA", stack_file=stack.stack_file,
                         reports_dir=reports, extra_env={"POLYCHECK_FLAKY_COUNTER": str(tmp_path / "attempts")})
        families = list(text_string_to_metric_families(httpx.get(f"{gateway.url}/metrics", timeout=5).text))
    assert run.returncode == 0, run.describe()  # it passed: GO, but with its flaky check named
    assert (tmp_path / "attempts").read_text() == "2"
    assert "FLAKY" in run.output and "1 flaky" in run.output, run.describe()  # the terminal
    signoff = json.loads((reports / "latest" / "signoff.json").read_text())
    assert signoff["verdict"] == "GO" and [f["check"] for f in signoff["flaky"]] == [
        "tests/support/checks/flaky_check.py::test_search_answers_on_the_second_try"], signoff
    assert "first failure: search answered 503 on the first try" in signoff["flaky"][0]["first_failure"], signoff
    assert "GO with 1 flaky check: env local" in run.output, run.describe()
    assert "## Flaky checks" in (reports / "latest" / "signoff.md").read_text()
    cases = ET.parse(reports / "latest" / "junit.xml").getroot().iter("testcase")
    attempts = [c for c in cases if c.get("name") == "test_search_answers_on_the_second_try"]
    assert attempts and attempts[-1].find("failure") is None, [ET.tostring(c) for c in attempts]
    properties = {p.get("name"): p.get("value") for p in attempts[-1].iter("property")}
    assert properties.get("verdict") == "flaky", properties  # JUnit
    results = [json.loads(p.read_text()) for p in (reports / "latest" / "allure-results").glob("*-result.json")]
    final = [r for r in results if r.get("status") == "passed"]
    assert final and all(r["statusDetails"].get("flaky") for r in final), final  # Allure
    assert {l["value"] for r in final for l in r["labels"] if l["name"] == "verdict"} == {"flaky"}, final
    flaky = {s.labels["check"]: s.value for f in families for s in f.samples if s.name == "polyshop_check_flaky"}
    assert flaky == {"flaky_check::test_search_answers_on_the_second_try": 1.0}, flaky  # the probe metrics


ALL = ("auth", "product", "inventory", "order", "payment", "notification", "search", "gateway")


def test_the_same_proxy_error_from_every_service_is_a_shared_cause_not_eight_rollbacks(stack: StackControl, tmp_path: Path) -> None:
    """A proxy or ingress answering the same 502 page for every service: INCONCLUSIVE naming the signature, no rollback."""
    log = tmp_path / "rollback.jsonl"
    for service in ALL:
        stack.set_fault(service, "proxy_error")
    run = run_suites("-m", "smoke", "suites/test_health.py", ROLLOUT, f"--rollback-log={log}", "--released=order,payment,auth",
                     stack_file=stack.stack_file)
    assert run.returncode == 6, run.describe()
    assert "targets answered the same HTTP 502 text/html body sha256:" in run.output, run.describe()
    assert "a shared cause in front of them (a proxy, an ingress, the network), not the release" in run.output
    assert not [r for r in audit(log) if r["step"] in ("decision", "kubernetes-undo", "argo-abort")], audit(log)
    stack.clear()
    stack.set_fault("order", "proxy_error")  # one service behind a broken proxy: its own failure, judged as before
    one = run_suites("-m", "smoke", "suites/test_health.py", "-k", "order", f"--rollback-log={tmp_path / 'one.jsonl'}",
                     "--rollback=dry-run", "--released=order", stack_file=stack.stack_file)
    assert one.returncode == 1, one.describe()
    assert {r["service"] for r in audit(tmp_path / "one.jsonl") if r["step"] == "decision"} == {"order"}


def test_a_service_still_failing_after_its_rollback_is_not_undone_again(stack: StackControl, tmp_path: Path) -> None:
    """A config change at the same image tag, then a failure the rollback cannot mend, three runs in a row (the
    CronJob every 5 minutes): one undo, then escalations — never revision 4 = 2, 5 = 3, 6 = 4."""
    stack.kube_fault("order", "no-probes")  # a new revision at the same image tag, 1.3.0
    stack.set_fault("order", "not_ready")  # fails whatever revision runs (and names no dependency of its own)
    logs = [tmp_path / f"run-{n}.jsonl" for n in range(3)]
    for log in logs:
        run = run_suites("-m", "smoke", "suites/test_health.py", "-k", "readiness and order", f"--rollback-log={log}",
                         "--release-version=1.3.0", "-p", "no:randomly", stack_file=stack.stack_file)
        assert run.returncode == 1, run.describe()
    undos = [[r["outcome"] for r in audit(log) if r["step"] == "kubernetes-undo"] for log in logs]
    assert undos == [["done"], [], []], undos
    assert [r["outcome"] for r in audit(logs[0]) if r["step"] == "memory"] == ["done"], audit(logs[0])
    for log in logs[1:]:
        held = [r for r in audit(log) if r["step"] == "escalation"]
        assert held and all("order is still failing after it was rolled back to revision" in r["detail"] for r in held), held
        assert "not this release" in held[0]["detail"]


def test_timeouts_across_most_services_are_a_shared_cause(stack: StackControl, tmp_path: Path) -> None:
    log = tmp_path / "rollback.jsonl"
    for service in ("auth", "product", "inventory", "order", "payment"):
        stack.set_fault(service, "hang")
    run = run_suites("-m", "smoke", "suites/test_health.py", f"--rollback-log={log}", "--released=order,payment,auth",
                     stack_file=stack.stack_file)
    assert run.returncode == 6, run.describe()
    assert "5 of 8 targets accepted the connection and did not answer /health/live" in run.output, run.describe()
    assert not [r for r in audit(log) if r["step"] in ("decision", "kubernetes-undo", "argo-abort")], audit(log)


def test_a_shared_cause_found_within_the_group_wait_holds_the_waiting_rollback(stack: StackControl, tmp_path: Path) -> None:
    """order fails alone; before its group wait ends, most services time out, so the run's later failure is
    INCONCLUSIVE for a shared cause: order's rollback is held, and the run escalates once saying so."""
    log = tmp_path / "rollback.jsonl"
    (tmp_path / "envs").mkdir()
    envs = env_with(tmp_path / "envs", {'unknown_scope = "all"\n': 'unknown_scope = "all"\ngroup_wait_seconds = 30\n'})
    run = run_suites("-c", "pyproject.toml", "tests/support/checks/shared_cause_check.py", "-p", "no:randomly",
                     f"--rollback-log={log}", "--rollback=dry-run", "--released=order,search", f"--env-dir={envs}",
                     stack_file=stack.stack_file)
    records = audit(log)
    assert run.returncode == 1, run.describe()  # order's check failed all the same: NO-GO, not rolled back
    assert run.cases["test_most_services_then_time_out"].outcome == "inconclusive", run.describe()
    assert not [r for r in records if r["step"] == "decision"], records
    (hold,) = [r for r in records if r["step"] == "hold"]
    assert hold["service"] == "order" and hold["rule"].startswith("shared cause: common cause: 5 of 8 services timed out")
    escalated = [r for r in records if r["step"] == "escalation"]
    assert len(escalated) == 1 and "not rolled back: order" in escalated[0]["detail"], records


def two_services_down(stack: StackControl, tmp_path: Path, group_wait: str) -> tuple[Any, list[dict[str, Any]]]:
    """order and inventory down, both released; the env's rollback.group_wait_seconds set to `group_wait`."""
    log = tmp_path / "rollback.jsonl"
    (tmp_path / "envs").mkdir()
    envs = env_with(tmp_path / "envs", {'unknown_scope = "all"\n': f'unknown_scope = "all"\ngroup_wait_seconds = {group_wait}\n'})
    stack.set_fault("order", "down")
    stack.set_fault("inventory", "down")
    run = run_suites("-m", "smoke", "suites/test_health.py", "-k", "order or inventory", f"--rollback-log={log}",
                     "--rollback=dry-run", "--released=order,inventory", f"--env-dir={envs}", stack_file=stack.stack_file)
    return run, audit(log)


def test_two_services_failing_within_the_group_wait_roll_back_neither_and_escalate_once(stack: StackControl,
                                                                                         tmp_path: Path) -> None:
    """The blast-radius limit (rollback.max_services = 1) with the group wait: two released services failing at
    once, no rollback, one escalation naming both (the wait is long here so a loaded machine cannot split them; the
    run's end decides)."""
    run, records = two_services_down(stack, tmp_path, "30")
    assert run.returncode == 1, run.describe()
    assert not [r for r in records if r["step"] == "decision"], records
    assert {r["service"] for r in records if r["step"] == "hold"} == {"order", "inventory"}, records
    held = [r for r in records if r["step"] == "escalation" and "services failing at once" in r["detail"]]
    assert len(held) == 1 and "2 services failing at once (inventory, order) within the 30 s group wait" in held[0]["detail"], records
    assert "suspect a shared cause" in held[0]["detail"] and "rollback.max_services = 1" in held[0]["detail"]


def test_with_no_group_wait_a_run_rolls_back_the_first_failing_service_and_escalates_the_second(stack: StackControl,
                                                                                                tmp_path: Path) -> None:
    """The other way round (rollback.group_wait_seconds = 0): the first to fail is rolled back at once, the limit
    holds the second, and one escalation names both."""
    run, records = two_services_down(stack, tmp_path, "0")
    assert run.returncode == 1, run.describe()
    decisions = {r["service"]: r["outcome"] for r in records if r["step"] in ("decision", "hold")}
    assert sorted(decisions.values()) == ["dry-run", "none"], decisions
    held = [r for r in records if r["step"] == "escalation" and "services failing at once" in r["detail"]]
    assert len(held) == 1 and "suspect a shared cause" in held[0]["detail"], records
    assert "rollback.max_services = 1" in held[0]["detail"]


def test_a_librarys_warning_is_not_a_verdict(stack: StackControl, tmp_path: Path) -> None:
    """A product run (the product's own pytest config, as a team runs it) judges the check, not a warning raised
    in it; the self-tests alone turn warnings into errors (tests/pytest.ini)."""
    run = run_suites("-c", "pyproject.toml", "tests/support/checks/warning_check.py", "-p", "no:randomly",
                     stack_file=stack.stack_file)
    assert run.returncode == 0, run.describe()
    assert run.cases["test_a_library_warns_while_the_check_passes"].outcome == "passed", run.describe()
    strict = run_suites("-c", "pyproject.toml", "-W", "error", "tests/support/checks/warning_check.py", "-p", "no:randomly",
                        stack_file=stack.stack_file)
    assert strict.returncode == 1, "the same check fails when warnings are errors: the test above proves something"
