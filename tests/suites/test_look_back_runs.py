"""Looking back, as the probe runs it: a second run of the same env judges what the first left that it could not —
a confirmation email sent twice minutes apart, a refund undone later — and passes when nothing of the kind happened."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from polycheck.core.polling import poll
from tests.support.stack_control import StackControl
from tests.support.suite_runner import SuiteRun, run_suites
from tests.support.selftest_env import local_env_text

FIRST = ("-m", "synthetic", "suites/test_notification.py", "-k", "confirmed_order", "-p", "no:randomly", "--rollback", "off")
SECOND = ("-m", "synthetic", "suites/test_look_back.py", "-p", "no:randomly", "--rollback", "off")
ORDERS = "test_earlier_orders_sent_no_late_duplicate_confirmation"
REFUNDS = "test_earlier_refunds_are_still_refunded"


def env_dir(tmp_path: Path) -> Path:
    """envs/local.toml judging orders one second old (the probe's default waits 5 minutes for a late duplicate)."""
    text = local_env_text().replace("[thresholds]\n", "[thresholds]\nlate_duplicate_seconds = 1.0\n", 1)
    (tmp_path / "local.toml").write_text(text)
    return tmp_path


def journal(ledger: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in ledger.read_text().splitlines()]


def runs(stack: StackControl, tmp_path: Path, *args: str) -> SuiteRun:
    return run_suites(*args, f"--env-dir={env_dir(tmp_path)}", f"--ledger={tmp_path / 'ledger.jsonl'}",
                      f"--rollback-log={tmp_path / 'log.jsonl'}", stack_file=stack.stack_file)


def test_a_second_run_looks_back_and_finds_nothing_wrong(stack: StackControl, tmp_path: Path) -> None:
    first = runs(stack, tmp_path, *FIRST)
    assert first.returncode == 0, first.describe()
    kinds = {line["kind"] for line in journal(tmp_path / "ledger.jsonl") if line.get("op") == "intent"}
    assert kinds == {"order", "payment"}, "the first run's order and payment stay in the journal for the next runs"
    second = runs(stack, tmp_path, *SECOND)
    assert second.returncode == 0 and second.ids("passed") == {ORDERS, REFUNDS}, second.describe()


def test_a_late_duplicate_confirmation_fails_the_next_run_naming_the_order_and_both_messages(stack: StackControl,
                                                                                           tmp_path: Path) -> None:
    stack.set_fault("notification", "late_duplicate", seconds=2.5)  # after the first run's 1 s watch is over
    first = runs(stack, tmp_path, *FIRST)
    assert first.returncode == 0, first.describe()
    (order,) = [line for line in journal(tmp_path / "ledger.jsonl") if line.get("op") == "intent" and line["kind"] == "order"]
    (created,) = [line for line in journal(tmp_path / "ledger.jsonl") if line.get("op") == "created" and line["key"] == order["key"]]
    outbox = f"{stack.stack.info.services['notification']}/api/notifications/outbox"
    confirmations = poll(lambda: [m for m in httpx.get(outbox, params={"to": order["email"]}, timeout=5).json()["messages"]
                                  if m["order_id"] == created["id"] and m["template"] == "order_confirmed"],
                         lambda found: len(found) == 2, timeout=15, what="the late duplicate in the outbox")
    second = runs(stack, tmp_path, *SECOND)
    assert second.failed == {ORDERS}, second.describe()
    message = second.cases[ORDERS].message
    assert f"order {created['id']}" in message and "2 order_confirmed emails, expected one" in message, message
    assert all(m["id"] in message for m in confirmations), message
    assert REFUNDS in second.ids("passed"), second.describe()


def test_a_refund_undone_later_fails_the_next_run_naming_the_payment(stack: StackControl, tmp_path: Path) -> None:
    stack.set_fault("payment", "refund_reverts", seconds=0.5)
    first = runs(stack, tmp_path, *FIRST)
    assert first.returncode == 0, first.describe()
    lines = journal(tmp_path / "ledger.jsonl")
    (payment,) = [line for line in lines if line.get("op") == "intent" and line["kind"] == "payment"]
    (created,) = [line for line in lines if line.get("op") == "created" and line["key"] == payment["key"]]
    second = runs(stack, tmp_path, *SECOND)
    assert second.failed == {REFUNDS}, second.describe()
    message = second.cases[REFUNDS].message
    assert f"payment {created['id']}" in message and "now reads 'succeeded'" in message, message
