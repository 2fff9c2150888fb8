"""The business-flow suites against the local stack: all pass when healthy; each flow fault fails exactly its checks."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from polycheck.polling import poll
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
INDEX_FRESH = "test_search_index_is_fresh"
FOUND = "test_catalogue_product_is_found_by_name"
TEST_EMAIL = "test_test_email_reaches_the_outbox"
CONFIRMATION_EMAIL = "test_confirmed_order_sends_one_confirmation"
BROWSER_LOGIN = "test_customer_signs_in_and_sees_products[chromium]"  # pytest-playwright parametrises by browser
BROWSER_WRONG = "test_wrong_password_shows_an_error[chromium]"
ALL = {LOGIN, ME, WRONG_PASSWORD, *FORGED, EXPIRED, IDEMPOTENCY, CONFIRMED, DECLINED, CANCELLED, INDEX_FRESH, FOUND,
       TEST_EMAIL, CONFIRMATION_EMAIL, BROWSER_LOGIN, BROWSER_WRONG}
NEEDS_LOGIN = {LOGIN, ME, *FORGED, IDEMPOTENCY, CONFIRMED, DECLINED, CANCELLED, CONFIRMATION_EMAIL, BROWSER_LOGIN}
ORDER_ID = r"ord_[0-9a-z]+"


@dataclass(frozen=True)
class FlowFault:
    service: str
    kind: str
    expected_failures: set[str]
    evidence: dict[str, str]  # check -> regex its message must match (flow step, ids, last observed state)
    params: dict[str, Any] = field(default_factory=dict)


FAULTS = [
    FlowFault("auth", "reject_logins", NEEDS_LOGIN, {
        LOGIN: r"step 'log in as probe-.*@synthetic\.polyshop\.test': \[gateway\] POST .*/api/auth/login: expected HTTP 200, got 401",
        CONFIRMED: r"/api/auth/login: expected HTTP 200, got 401.*invalid_credentials",
    }),
    FlowFault("auth", "expire_tokens", {LOGIN, ME, IDEMPOTENCY, CONFIRMED, DECLINED, CANCELLED, CONFIRMATION_EMAIL, BROWSER_LOGIN}, {
        LOGIN: r"expires_in is 0 s, expected 60\.\.86400 s: sessions would expire at once",
        ME: r"step 'read /api/auth/me with the fresh token': .* expected HTTP 200, got 401",
        CONFIRMED: r"step 'create an order of 2 x SKU-\d+': .*POST .*/api/orders: expected HTTP 201, got 401",
    }),
    FlowFault("payment", "decline_all", {CONFIRMED, CONFIRMATION_EMAIL}, {
        CONFIRMED: rf"payment pay_[0-9a-z]+ of order {ORDER_ID} is 'declined', expected 'succeeded'",
    }),
    FlowFault("order", "stuck_paid", {CONFIRMED, CONFIRMATION_EMAIL}, {
        CONFIRMED: rf"step 'order {ORDER_ID} moves to confirmed after payment pay_[0-9a-z]+': order {ORDER_ID} confirmed "
                   rf"after payment pay_[0-9a-z]+: not reached within 5 s .*last observed: order {ORDER_ID} status 'paid'",
        CONFIRMATION_EMAIL: rf"order {ORDER_ID} confirmed: not reached within 5 s.*status 'paid'",
    }),
    FlowFault("inventory", "no_confirm", {CONFIRMED, CONFIRMATION_EMAIL}, {
        CONFIRMED: rf"order {ORDER_ID} confirmed .*not reached within 5 s .*last observed: order {ORDER_ID} status 'paid', payment pay_\w+, reservation res_\w+",
    }),
    FlowFault("inventory", "leak_on_cancel", {CANCELLED}, {
        CANCELLED: rf"step 'the stock of SKU-\d+ is back after cancelling order {ORDER_ID}': SKU-\d+ back to available=\d+ reserved=\d+: "
                   r"not reached within 5 s .*last observed: available=\d+ reserved=\d+",
    }),
    FlowFault("order", "ignore_idempotency", {IDEMPOTENCY}, {
        IDEMPOTENCY: rf"the repeated Idempotency-Key [0-9a-f-]+ created a second order {ORDER_ID} beside {ORDER_ID}",
    }),
    FlowFault("search", "empty_results", {FOUND}, {
        FOUND: r"searching '.+' did not find product prd_\d+ \(SKU-\d+\); got 0 results",
    }),
    FlowFault("search", "index_stalled", {INDEX_FRESH}, {
        INDEX_FRESH: r"the search index trails the catalogue by \d+\.\d s .*over the 2 s threshold",
    }),
    FlowFault("notification", "drop", {TEST_EMAIL, CONFIRMATION_EMAIL}, {
        TEST_EMAIL: r"step 'message \w+ reaches the outbox of probe-.*': smoke_test message \w+ in the outbox of .*not reached within 5 s.*last observed: 0 messages",
        CONFIRMATION_EMAIL: rf"order_confirmed message for order {ORDER_ID} .*not reached within 5 s.*last observed: messages for the order: \[\]",
    }),
    FlowFault("gateway", "broken_storefront", {BROWSER_LOGIN}, {
        BROWSER_LOGIN: r"step 'the products page lists at least one product'",
    }),
]


def run_flows(stack: StackControl, *extra: str) -> SuiteRun:
    return run_suites("-m", "smoke", *SUITES, *extra, stack_file=stack.stack_file)


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
def test_flow_fault_fails_exactly_its_checks(stack: StackControl, fault: FlowFault) -> None:
    before = read_leftovers(stack)
    stack.set_fault(fault.service, fault.kind, **fault.params)
    if fault.kind == "index_stalled":  # let the lag outgrow the 2 s threshold before the run
        poll(lambda: httpx.get(f"{stack.stack.info.services['search']}/api/search/status", timeout=5).json()["lag_seconds"],
             lambda lag: lag > 2.5, timeout=10, what="search lag above 2.5 s")
    run = run_flows(stack)
    assert run.failed == fault.expected_failures, run.describe()
    assert run.ids("passed") == ALL - fault.expected_failures, run.describe()
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
