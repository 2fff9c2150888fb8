"""The business-flow suites against the local stack: all pass when healthy; each flow fault fails exactly its checks."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from polycheck.core.polling import poll
from tests.support.selftest_env import CONFIRMATION_BUDGET, DELIVERY_BUDGET
from tests.support.stack_control import StackControl
from tests.support.suite_runner import SuiteRun, run_suites

SUITES = [
    "suites/test_auth.py",
    "suites/test_order_flow.py",
    "suites/test_search.py",
    "suites/test_notification.py",
    "suites/test_storefront.py",
]
LOGIN = "test_login_returns_a_sane_bearer_token"
ME = "test_me_returns_the_synthetic_user"
WRONG_PASSWORD = "test_wrong_password_is_rejected"
FORGED = {f"test_forged_or_malformed_token_is_rejected[{t}]" for t in ("forged-signature", "forged-claims", "malformed")}
EXPIRED = "test_expired_token_is_rejected"
IDEMPOTENCY = "test_repeated_idempotency_key_returns_the_same_order"
CONFIRMED = "test_order_is_confirmed_after_payment"
DECLINED = "test_declined_payment_fails_the_order_and_releases_stock"
CANCELLED = "test_cancelled_order_releases_its_stock"
TOTAL = "test_order_total_is_what_the_catalogue_charges"
CANCEL_CONFIRMED = "test_cancelling_a_confirmed_order_refunds_and_restocks"
INDEX_FRESH = "test_search_index_is_fresh"
FOUND = "test_catalogue_product_is_found_by_name"
TEST_EMAIL = "test_test_email_reaches_the_outbox"
CONFIRMATION_EMAIL = "test_confirmed_order_sends_one_confirmation"
BROWSER_LOGIN = "test_customer_signs_in_and_sees_products[chromium]"  # pytest-playwright parametrises by browser
BROWSER_WRONG = "test_wrong_password_shows_an_error[chromium]"
ALL = {LOGIN, ME, WRONG_PASSWORD, *FORGED, EXPIRED, IDEMPOTENCY, TOTAL, CONFIRMED, DECLINED, CANCELLED, CANCEL_CONFIRMED,
       INDEX_FRESH, FOUND, TEST_EMAIL, CONFIRMATION_EMAIL, BROWSER_LOGIN, BROWSER_WRONG}
SIGNED_IN_FLOWS = {IDEMPOTENCY, TOTAL, CONFIRMED, DECLINED, CANCELLED, CANCEL_CONFIRMED, CONFIRMATION_EMAIL, BROWSER_LOGIN}
CONFIRMING = {CONFIRMED, CANCEL_CONFIRMED}
ORDER_ID = r"ord_[0-9a-z]+"


@dataclass(frozen=True)
class FlowFault:
    service: str
    kind: str
    failed: set[str]  # checks that fail (their culprit is a service they judge)
    blocked: set[str]  # checks blocked by the culprit (a service they only depend on)
    evidence: dict[str, str]  # check -> regex its message must match (flow step, ids, last observed state, culprit)
    params: dict[str, Any] = field(default_factory=dict)
    decided: frozenset[str] | None = None  # the rollback decisions (default: the broken service); none for candidates


FAULTS = [
    FlowFault("auth", "reject_logins", {LOGIN, ME, *FORGED}, SIGNED_IN_FLOWS, {
        LOGIN: r"step 'log in as probe-.*@synthetic\.polyshop\.test': \[gateway\] \(gateway -> auth\) POST .*/api/auth/login: "
               r"expected HTTP 200, got 401.*culprit: auth",
        CONFIRMED: r"blocked by auth: .*/api/auth/login: expected HTTP 200, got 401",
    }),
    FlowFault("auth", "expire_tokens", {LOGIN, ME}, SIGNED_IN_FLOWS, {
        LOGIN: r"expires_in is 0 s, expected 60\.\.86400 s: sessions would expire at once",
        ME: r"step 'read /api/auth/me with the fresh token': .* expected HTTP 200, got 401",
        CONFIRMED: r"blocked by auth: step 'create an order of 2 x SKU-\d+': .*POST .*/api/orders: expected HTTP 201, got 401",
    }),
    FlowFault("payment", "decline_all", CONFIRMING, {CONFIRMATION_EMAIL}, {
        CONFIRMED: rf"payment pay_[0-9a-z]+ of order {ORDER_ID} with tok_sandbox_visa is 'declined', expected 'succeeded'.*culprit: payment",
        CANCEL_CONFIRMED: r"cannot happen any more.*status 'payment_failed'.*blamed on payment: payment pay_\w+ reads 'declined'",
        CONFIRMATION_EMAIL: r"blocked by payment",
    }),
    FlowFault("order", "stuck_paid", CONFIRMING, {CONFIRMATION_EMAIL}, {
        CONFIRMED: rf"step 'order {ORDER_ID} moves to confirmed after payment pay_[0-9a-z]+': order {ORDER_ID} confirmed "
                   rf"after payment pay_[0-9a-z]+: not reached within {CONFIRMATION_BUDGET:g} s .*last observed: order {ORDER_ID} status 'paid'.*"
                   r"blamed on order: .*order did not move on",
        CONFIRMATION_EMAIL: r"blocked by order",
    }),
    FlowFault("inventory", "no_confirm", CONFIRMING, {CONFIRMATION_EMAIL}, {
        CONFIRMED: rf"order {ORDER_ID} confirmed .*not reached within {CONFIRMATION_BUDGET:g} s .*last observed: order {ORDER_ID} status 'paid', payment pay_\w+, "
                   r"reservation res_\w+.*blamed on order or inventory: order ord_\w+ is 'paid' and its reservation res_\w+ 'held'"
                   r".*culprit: order or inventory",
        CONFIRMATION_EMAIL: r"blocked by order or inventory",
    }, decided=frozenset()),  # order paid, reservation held: which of them lost the confirmation does not show
    FlowFault("inventory", "leak_on_cancel", {CANCELLED, CANCEL_CONFIRMED}, set(), {
        CANCELLED: rf"step 'the stock of SKU-\d+ is back after cancelling order {ORDER_ID}': SKU-\d+ back to available=\d+ reserved=\d+: "
                   rf"not reached within {CONFIRMATION_BUDGET:g} s .*last observed: available=\d+ reserved=\d+.*culprit: order or inventory",
    }, decided=frozenset()),  # order cancelled, reservation held: order did not ask, or inventory did not release
    FlowFault("order", "ignore_idempotency", {IDEMPOTENCY}, set(), {
        IDEMPOTENCY: rf"the repeated Idempotency-Key [0-9a-f-]+ created a second order {ORDER_ID} beside {ORDER_ID}.*culprit: order",
    }),
    FlowFault("search", "empty_results", {FOUND}, set(), {
        FOUND: r"searching '.+' did not find product prd_\d+ \(SKU-\d+\); got 0 results.*culprit: search",
    }),
    FlowFault("search", "index_stalled", {INDEX_FRESH}, set(), {
        INDEX_FRESH: r"the search index trails the catalogue by \d+\.\d s .*over the 2 s threshold",
    }),
    FlowFault("notification", "drop", {TEST_EMAIL, CONFIRMATION_EMAIL}, set(), {
        TEST_EMAIL: rf"step 'message \w+ reaches the outbox of probe-.*': smoke_test message \w+ in the outbox of .*not reached within {DELIVERY_BUDGET:g} s.*last observed: 0 messages",
        CONFIRMATION_EMAIL: rf"order_confirmed message for order {ORDER_ID} .*not reached within {DELIVERY_BUDGET:g} s.*last observed: messages for the order: \[\].*culprit: notification",
    }),
    FlowFault("gateway", "broken_storefront", {BROWSER_LOGIN}, set(), {
        BROWSER_LOGIN: r"step 'the products page lists at least one product'.*culprit: gateway",
    }),
]


def run_flows(stack: StackControl, *extra: str) -> SuiteRun:
    return run_suites("-m", "smoke", *SUITES, *extra, stack_file=stack.stack_file)


def rolled_back(log: Path) -> set[str]:
    """The services the run decided to roll back, from its audit log."""
    records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return {r["service"] for r in records if r["step"] == "decision"}


NOTHING_LEFT = {"held_reservations": [], "unrefunded_payments": [], "open_orders": []}


def read_leftovers(stack: StackControl) -> dict[str, list[str]]:
    return httpx.get(f"{stack.stack.info.control}/leftovers", timeout=10).json()


def new_leftovers(stack: StackControl, before: dict[str, list[str]]) -> dict[str, list[str]]:
    """Synthetic data left since `before`, once the (asynchronous) releases settled; polls up to 5 s for none."""
    def read() -> dict[str, list[str]]:
        now = read_leftovers(stack)
        return {kind: sorted(set(ids) - set(before.get(kind, []))) for kind, ids in now.items()}

    try:
        return poll(read, lambda left: left == NOTHING_LEFT, timeout=5, what="no synthetic leftovers")
    except AssertionError:
        return read()


def test_healthy_stack_passes_every_flow(stack: StackControl) -> None:
    run = run_flows(stack)
    assert run.returncode == 0, run.describe()
    assert run.ids("passed") == ALL, run.describe()


def test_healthy_flows_pass_under_xdist_and_leave_nothing_behind(stack: StackControl) -> None:
    before = read_leftovers(stack)
    run = run_flows(stack, "-n", "2")
    assert run.returncode == 0, run.describe()
    assert run.ids("passed") == ALL, run.describe()
    left = new_leftovers(stack, before)
    assert left == NOTHING_LEFT, left


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f"{f.kind}-{f.service}")
def test_flow_fault_fails_exactly_its_checks(stack: StackControl, fault: FlowFault, tmp_path: Path) -> None:
    """Each fault fails the checks that judge the broken service, blocks those that only depend on it, and the
    rollback decisions name exactly the broken service."""
    before = read_leftovers(stack)
    stack.set_fault(fault.service, fault.kind, **fault.params)
    if fault.kind == "index_stalled":  # let the lag outgrow the 2 s threshold before the run
        poll(lambda: httpx.get(f"{stack.stack.info.services['search']}/api/search/status", timeout=5).json()["lag_seconds"],
             lambda lag: lag > 2.5, timeout=10, what="search lag above 2.5 s")
    log = tmp_path / "rollback.jsonl"
    run = run_flows(stack, "--rollback", "off", f"--rollback-log={log}")
    assert run.returncode == 1, run.describe()
    assert run.failed == fault.failed, run.describe()
    assert run.ids("blocked") == fault.blocked, run.describe()
    assert run.ids("passed") == ALL - fault.failed - fault.blocked, run.describe()
    assert rolled_back(log) == ({fault.service} if fault.decided is None else fault.decided), run.describe()
    for check, evidence in fault.evidence.items():
        message = run.cases[check].message
        assert re.search(evidence, message, re.DOTALL), f"{check}: {message!r}\n does not match {evidence!r}"
    stack.clear()
    left = new_leftovers(stack, before)
    if fault.kind != "leak_on_cancel":  # that fault is exactly stock not coming back
        assert left == NOTHING_LEFT, left


@pytest.mark.stress
@pytest.mark.parametrize("attempt", range(20))
def test_healthy_flows_are_not_flaky(stack: StackControl, attempt: int) -> None:
    """make test-stress: the healthy flow suites pass 20 runs in a row."""
    run = run_flows(stack)
    assert run.returncode == 0, f"attempt {attempt}: {run.describe()}"
