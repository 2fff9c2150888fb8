"""Checks marked `concurrent` run ahead, at once: the same verdicts as one at a time, and a failure is acted on the
moment it happens, even while the browser checks hold the main thread."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
    # decided in the thread the check failed in, not when the main thread (in a browser check) reached its report
    assert all(d["seconds_after_failure"] < 0.5 for d in made), made


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
