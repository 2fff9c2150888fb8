"""Sweeping leftovers: a run killed in the middle of the order flow (SIGKILL) leaves an order and a captured payment;
`python -m polycheck cleanup` finds them in the journal and leaves nothing held, captured or open."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from polycheck.core.leftovers import Journal, pending
from polycheck.core.polling import poll
from tests.support.shop import PASSWORD, Shop
from tests.support.stack_control import StackControl
from tests.support import selftest_env
from tests.support.suite_runner import REPO, as_checker, suite_env
from tests.suites.test_flow_suites import NOTHING_LEFT, new_leftovers, read_leftovers


def cleanup(stack: StackControl, ledger: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = suite_env()
    return subprocess.run([sys.executable, "-m", "polycheck", "cleanup", "--env", "local", "--ledger", str(ledger),
                           "--stack-file", str(stack.stack_file), *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def journal_lines(ledger: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ledger.read_text().splitlines()] if ledger.exists() else []


PAID = ("unrefunded_payments", "open_orders")


def test_a_run_killed_mid_flow_is_swept_clean(stack: StackControl, tmp_path: Path) -> None:
    ledger = tmp_path / "leftovers.jsonl"
    before = read_leftovers(stack)
    env = suite_env()
    env["POLYCHECK_STACK_FILE"] = str(stack.stack_file)
    probe = subprocess.Popen(as_checker(
        [sys.executable, "-m", "pytest", *selftest_env.with_env_dir(["suites/test_order_flow.py", "-k", "test_order_is_confirmed_after_payment",
         "--env", "local", "--ledger", str(ledger), f"--reports-dir={tmp_path / 'reports'}", "-q"])]),
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def paid() -> list[dict[str, Any]]:
            keys = {line["key"] for line in journal_lines(ledger) if line["op"] == "intent" and line["kind"] == "payment"}
            return [line for line in journal_lines(ledger) if line["op"] == "created" and line["key"] in keys]

        poll(paid, bool, timeout=60, interval=0.01, max_interval=0.05, what="the probe's payment to be answered")
        probe.send_signal(signal.SIGKILL)  # its finaliser never runs
    finally:
        if probe.poll() is None:
            probe.kill()
        probe.wait(timeout=30)
    assert probe.returncode == -signal.SIGKILL
    left = poll(lambda: new_leftovers_now(stack, before), lambda d: bool(d["unrefunded_payments"]) and bool(d["open_orders"]),
                timeout=10, what="the killed run's order and captured payment")
    journal = Journal(ledger)
    assert {e.kind for e in pending(journal, 0)} == {"order", "payment"}

    dry = cleanup(stack, ledger, "--older-than", "0s", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "would refund payment" in dry.stdout and "would cancel order" in dry.stdout
    after = new_leftovers_now(stack, before)  # (the reservation may still move from held to confirmed on its own)
    assert {k: after[k] for k in PAID} == {k: left[k] for k in PAID}, "a dry run changes nothing"

    recent = cleanup(stack, ledger, "--older-than", "1h")
    assert recent.returncode == 0 and "0 leftover(s) older than 1h" in recent.stdout, "a live run's data is not touched"

    swept = cleanup(stack, ledger, "--older-than", "0s")
    assert swept.returncode == 0, swept.stdout + swept.stderr
    assert "refunded payment" in swept.stdout and "cancelled order" in swept.stdout, swept.stdout
    assert new_leftovers(stack, before) == NOTHING_LEFT
    assert pending(journal, 0) == [], "nothing is left to sweep"
    # what is clean stays only for the later runs' look back (thresholds.look_back_seconds), marked cleaned
    kept = journal.entries()
    assert kept and all(e.cleaned for e in kept), kept
    assert journal.compact(keep_cleaned_seconds=0) == len(kept) and journal_lines(ledger) == [], "older ones are dropped"


def new_leftovers_now(stack: StackControl, before: dict[str, list[str]]) -> dict[str, list[str]]:
    now = read_leftovers(stack)
    return {kind: sorted(set(ids) - set(before.get(kind, []))) for kind, ids in now.items()}


@pytest.fixture
def shop(local_stack: Any) -> Any:
    api = Shop(local_stack)
    yield api
    api.close()


def test_an_order_whose_answer_never_came_is_found_by_its_idempotency_key(stack: StackControl, shop: Shop,
                                                                          tmp_path: Path) -> None:
    before = read_leftovers(stack)
    buyer = shop.new_buyer()
    ledger = tmp_path / "leftovers.jsonl"
    journal = Journal(ledger, run_id="killed", env="local")
    sku = shop.sku()
    taken, lost = str(uuid.uuid4()), str(uuid.uuid4())
    journal.intend(taken, "order", buyer.email, {"items": [{"sku": sku, "qty": 1}]}, PASSWORD)
    placed = shop.place_order(buyer, sku, 1, key=taken)  # the service took it; the run died before recording the id
    assert placed.status_code == 201, placed.text
    journal.intend(lost, "order", buyer.email, {"items": [{"sku": sku, "qty": 1}]}, PASSWORD)  # never sent
    assert new_leftovers_now(stack, before)["open_orders"] == [placed.json()["id"]]

    swept = cleanup(stack, ledger, "--older-than", "0s")
    assert swept.returncode == 3, swept.stdout + swept.stderr  # done, but one cannot be verified
    assert f"cancelled order {placed.json()['id']}: cancelled, reservation" in swept.stdout, "the same order, read back"
    # the never-sent one: the replay made a new order (201), cancelled; whether the lost create held stock cannot be seen
    (line,) = [line for line in swept.stdout.splitlines() if lost in line]
    assert line.split()[0] == "unverified" and f"Idempotency-Key {lost} ({sku} x 1): the shop had recorded no order" in line
    assert f"check GET /api/inventory/{sku}" in line, line
    assert new_leftovers(stack, before) == NOTHING_LEFT


def test_a_hold_the_shop_kept_for_a_lost_create_is_reported_never_called_cleaned(
        stack: StackControl, shop: Shop, tmp_path: Path) -> None:
    """SIGKILL while a create is in flight, and the shop held the stock but never recorded the order: the sweeper
    cancels what the replay finds, reports the hold it cannot see by key, SKU and quantity, and exits 3."""
    buyer = shop.new_buyer()
    ledger = tmp_path / "leftovers.jsonl"
    journal = Journal(ledger, run_id="killed", env="local")
    sku, key = shop.sku(3), str(uuid.uuid4())
    stock_before = shop.stock(sku)
    journal.intend(key, "order", buyer.email, {"items": [{"sku": sku, "qty": 2}]}, PASSWORD)
    stack.set_fault("order", "lose_after_hold")
    lost = shop.place_order(buyer, sku, 2, key=key)  # the answer a killed run never read
    assert lost.status_code == 503, lost.text
    stack.clear()
    assert shop.stock(sku)["reserved"] == stock_before["reserved"] + 2, "the shop kept a hold for an order it never recorded"

    swept = cleanup(stack, ledger, "--older-than", "0s")
    assert swept.returncode == 3, swept.stdout + swept.stderr
    (line,) = [line for line in swept.stdout.splitlines() if key in line]
    assert line.split()[0] == "unverified", swept.stdout  # never "cleaned"
    assert f"Idempotency-Key {key} ({sku} x 2): the shop had recorded no order" in line, line
    assert "may have left a hold on that stock" in line and f"check GET /api/inventory/{sku}" in line, line
    assert "a human must check the stock named" in swept.stdout
    assert pending(Journal(ledger), 0) == [], "reported once, not replayed again by the next sweep"


def test_a_leftover_that_cannot_be_cleaned_stays_for_the_next_sweep(stack: StackControl, tmp_path: Path) -> None:
    ledger = tmp_path / "leftovers.jsonl"
    Journal(ledger, run_id="r", env="local").intend(str(uuid.uuid4()), "order", "ghost@synthetic.polyshop.test",
                                                    {"items": []}, "wrong-password")
    swept = cleanup(stack, ledger, "--older-than", "0s")
    assert swept.returncode == 1, swept.stdout + swept.stderr
    assert "failed" in swept.stdout and "could not be cleaned" in swept.stdout
    assert len(pending(Journal(ledger), 0)) == 1
    usage = cleanup(stack, ledger, "--older-than", "soon")
    assert usage.returncode == 4 and "soon" in usage.stderr


def test_sigterm_mid_flow_runs_the_finalisers_and_signs_off_terminated(stack: StackControl, tmp_path: Path) -> None:
    """SIGTERM (a Job's deadline, an eviction) is Ctrl-C: the order is cancelled and refunded by the run itself, the
    sign-off says INCONCLUSIVE (terminated), and nothing is left for a sweep."""
    ledger, reports = tmp_path / "leftovers.jsonl", tmp_path / "reports"
    before = read_leftovers(stack)
    env = suite_env()
    env["POLYCHECK_STACK_FILE"] = str(stack.stack_file)
    probe = subprocess.Popen(as_checker(
        [sys.executable, "-m", "pytest", *selftest_env.with_env_dir(["suites/test_order_flow.py", "-k", "test_order_is_confirmed_after_payment",
         "--env", "local", f"--ledger={ledger}", f"--reports-dir={reports}", "-q", "-p", "no:randomly"])]),
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def paid() -> list[dict[str, Any]]:
            keys = {line["key"] for line in journal_lines(ledger) if line["op"] == "intent" and line["kind"] == "payment"}
            return [line for line in journal_lines(ledger) if line["op"] == "created" and line["key"] in keys]

        poll(paid, bool, timeout=60, interval=0.01, max_interval=0.05, what="the probe's payment to be answered")
        probe.send_signal(signal.SIGTERM)
        output, _ = probe.communicate(timeout=30)  # well inside the CronJob's terminationGracePeriodSeconds
    finally:
        if probe.poll() is None:
            probe.kill()
            probe.wait(timeout=30)
    assert probe.returncode == 2, output  # pytest's "interrupted"
    assert "polycheck: SIGTERM: the run was stopped; its finalisers ran" in output, output
    signoff = json.loads((reports / "latest" / "signoff.json").read_text())
    assert signoff["verdict"] == "INCONCLUSIVE" and signoff["note"] == "terminated (SIGTERM): the finalisers ran", signoff
    assert pending(Journal(ledger), 0) == [], "the run cleaned its own data: nothing for the sweeper"
    assert new_leftovers(stack, before) == NOTHING_LEFT
