"""Checks marked `concurrent` run ahead, at once: the same verdicts as one at a time, and a failure is acted on the
moment it happens, even while the browser checks hold the main thread."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from polycheck.core.config import RollbackConfig
from tests.support.stack_control import StackControl
from tests.support.suite_runner import SuiteRun, run_suites

SUITES = ["suites/test_order_flow.py", "suites/test_notification.py", "suites/test_storefront.py"]


def decisions(log: Path) -> list[dict[str, Any]]:
    return [r for r in map(json.loads, log.read_text().splitlines()) if r["step"] == "decision"]


def verdicts(run: SuiteRun) -> dict[str, str]:
    return {name: case.outcome for name, case in run.cases.items()}


def test_a_failure_is_acted_on_at_once_while_the_browser_holds_the_main_thread(stack: StackControl, tmp_path: Path) -> None:
    stack.set_fault("payment", "decline_all")
    log = tmp_path / "rollback.jsonl"
    run = run_suites("-m", "smoke", *SUITES, "--rollback=dry-run", "--released=payment", f"--rollback-log={log}",
                     stack_file=stack.stack_file)
    assert run.returncode == 1, run.describe()
    assert "checks ran ahead, 16 at a time" in run.output, run.describe()
    made = decisions(log)
    assert {d["service"] for d in made} == {"payment"}, made
    # decided when its group wait ended (the engine's timer), not when the main thread (in a browser check) reached
    # its report; a wait that found other checks' requests still out waited for them, then one more group wait
    wait = RollbackConfig().group_wait_seconds
    for d in made:
        waited = d.get("waited_for_requests_seconds")
        assert wait <= d["seconds_after_failure"] < (wait + 0.5 if waited is None else 2 * wait + waited + 0.5), made


def test_running_ahead_gives_the_same_verdicts_as_one_at_a_time(stack: StackControl, tmp_path: Path) -> None:
    stack.set_fault("payment", "decline_all")
    runs = {}
    for concurrency in ("16", "1"):
        log = tmp_path / f"rollback-{concurrency}.jsonl"
        runs[concurrency] = (run_suites("-m", "smoke", *SUITES, "--rollback=off", f"--rollback-log={log}",
                                        f"--concurrency={concurrency}", stack_file=stack.stack_file), log)
    (ahead, ahead_log), (one_by_one, one_log) = runs["16"], runs["1"]
    assert "checks ran ahead" in ahead.output and "checks ran ahead" not in one_by_one.output, one_by_one.describe()
    assert ahead.failed and verdicts(ahead) == verdicts(one_by_one), (ahead.describe(), one_by_one.describe())
    assert {d["service"] for d in decisions(ahead_log)} == {d["service"] for d in decisions(one_log)} == {"payment"}


# what varies between two runs of the same failure: when, which run, and how fast it was decided
VARYING = ("time", "run_id", "check_failed_at", "seconds_after_failure")


IDS = re.compile(r"\b[a-z]+_[0-9a-f]{8,}\b|\b[0-9a-f]{16,}\b|\d+")  # this run's order, payment, trace ids; amounts


def audit_records(log: Path) -> list[dict[str, Any]]:
    """The audit log without what varies from run to run: times, the run id, and the synthetic ids in texts."""
    return [{k: IDS.sub("#", v) if isinstance(v, str) else v for k, v in record.items() if k not in VARYING}
            for record in map(json.loads, log.read_text().splitlines())]


def test_a_failure_audits_the_same_whether_it_ran_ahead_or_in_its_turn(stack: StackControl, tmp_path: Path) -> None:
    """One decision path: the failing order check (ahead with --concurrency 16, in its turn with 1) leaves the same
    audit records, reason included; the browser check goes first, so the order check runs ahead."""
    stack.set_fault("payment", "decline_all")
    select = "test_wrong_password_shows_an_error or test_order_is_confirmed_after_payment"
    logs = {}
    for concurrency in ("16", "1"):
        logs[concurrency] = tmp_path / f"rollback-{concurrency}.jsonl"
        run = run_suites("-m", "smoke", *SUITES, "-k", select, "--rollback=dry-run", "--released=payment",
                         f"--rollback-log={logs[concurrency]}", f"--concurrency={concurrency}", stack_file=stack.stack_file)
        assert run.returncode == 1 and list(run.failed) == ["test_order_is_confirmed_after_payment"], run.describe()
        assert ("1 checks ran ahead" in run.output) == (concurrency == "16"), run.describe()
    ahead, in_turn = audit_records(logs["16"]), audit_records(logs["1"])
    assert ahead and any(r["step"] == "decision" and r["service"] == "payment" for r in ahead), ahead
    assert all(r.get("reason") for r in ahead), ahead  # every record keeps the evidence it was decided on
    assert ahead == in_turn, (ahead, in_turn)
