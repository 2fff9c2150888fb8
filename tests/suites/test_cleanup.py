"""Sweeping leftovers: a run killed in the middle of the order flow (SIGKILL) leaves an order and a captured payment;
`python -m polycheck cleanup` finds them in the journal and leaves nothing held, captured or open."""

from __future__ import annotations

import json
import os
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
from tests.support.suite_runner import REPO
from tests.suites.test_flow_suites import NOTHING_LEFT, new_leftovers, read_leftovers


def cleanup(stack: StackControl, ledger: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "POLYCHECK_"))}
    return subprocess.run([sys.executable, "-m", "polycheck", "cleanup", "--env", "local", "--ledger", str(ledger),
                           "--stack-file", str(stack.stack_file), *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def journal_lines(ledger: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ledger.read_text().splitlines()] if ledger.exists() else []


PAID = ("unrefunded_payments", "open_orders")


def test_a_run_killed_mid_flow_is_swept_clean(stack: StackControl, tmp_path: Path) -> None:
    ledger = tmp_path / "leftovers.jsonl"
    before = read_leftovers(stack)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "POLYCHECK_"))}
    env["POLYCHECK_STACK_FILE"] = str(stack.stack_file)
    probe = subprocess.Popen(
        [sys.executable, "-m", "pytest", "suites/test_order_flow.py", "-k", "test_order_is_confirmed_after_payment",
         "--env", "local", "--ledger", str(ledger), "-q"],
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
    assert pending(journal, 0) == [] and journal_lines(ledger) == [], "the journal keeps nothing that is clean"


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
    assert swept.returncode == 0, swept.stdout + swept.stderr
    assert f"cancelled order {placed.json()['id']}" in swept.stdout, "the replay with its key found the same order"
    assert swept.stdout.count("cancelled order") == 2, swept.stdout  # the never-sent one: created by the replay, cancelled
    assert new_leftovers(stack, before) == NOTHING_LEFT


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
