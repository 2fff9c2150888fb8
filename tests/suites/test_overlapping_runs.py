"""Runs share the world: five runs at once against one shop never read each other's stock moves (cross-run SKU
leases), so a healthy shop is five GOs and a declining payment is five NO-GOs naming payment alone."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.suites.test_rollback import audit
from tests.support.stack_control import StackControl
from tests.support.suite_runner import SuiteRun, run_suites

RUNS = 5
FLOWS = ("suites/test_order_flow.py",)  # the checks that assert on stock
# five whole runs of 16 checks at once would overload the local stack on a 2-core runner (its order service answers
# db_pool_exhausted): each run keeps 4 checks in flight, still 20 at once against one shop
CONCURRENCY = "--concurrency=4"


def five_at_once(stack: StackControl, tmp_path: Path) -> list[tuple[SuiteRun, Path]]:
    def one(index: int) -> tuple[SuiteRun, Path]:
        log = tmp_path / f"rollback-{index}.jsonl"
        run = run_suites("-m", "smoke", *FLOWS, CONCURRENCY, "--rollback=dry-run", "--released=order,inventory,payment",
                         f"--rollback-log={log}", "-p", "no:randomly", stack_file=stack.stack_file, timeout=400)
        return run, log

    with ThreadPoolExecutor(RUNS) as pool:
        return list(pool.map(one, range(RUNS)))


def test_five_runs_at_once_against_a_healthy_shop_are_five_gos(stack: StackControl, tmp_path: Path) -> None:
    runs = five_at_once(stack, tmp_path)
    for run, log in runs:
        assert run.returncode == 0, run.describe()
        assert not [r for r in audit(log) if r["step"] == "decision"], audit(log)
    stock = [name for run, _ in runs for name in run.cases if "stock" in name]
    assert stock, "the stock-asserting checks ran in every run"


def test_five_runs_at_once_with_payment_declining_all_name_payment(stack: StackControl, tmp_path: Path) -> None:
    stack.set_fault("payment", "decline_all")
    for run, log in five_at_once(stack, tmp_path):
        assert run.returncode == 1, run.describe()
        culprits = set(re.findall(r"\[culprit: ([a-z,]+)\]", run.output))
        assert culprits == {"payment"}, run.describe()
        assert {r["service"] for r in audit(log) if r["step"] == "decision"} == {"payment"}, audit(log)
