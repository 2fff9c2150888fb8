"""The contract suites against the local stack: each contract fault fails exactly its check, blamed on its service."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.stack_control import StackControl
from tests.support.suite_runner import SuiteRun, run_suites
from tests.suites.test_flow_suites import NOTHING_LEFT, new_leftovers, read_leftovers

CONTRACT = ["suites/test_contract.py", "suites/test_propagation.py"]
FLOWS = ["suites/test_order_flow.py", "suites/test_notification.py", "suites/test_search.py"]


@dataclass(frozen=True)
class ContractFault:
    service: str
    kind: str
    failed: set[str]  # exactly these checks fail
    culprit: str | None  # the one service in the rollback decisions (None: the check does not roll back)
    evidence: str | tuple[str, ...]  # in every failure message (each of them)
    suites: tuple[str, ...] = tuple(CONTRACT)
    blocked: frozenset[str] = frozenset()  # checks that only depend on the culprit
    params: dict[str, Any] = field(default_factory=dict)
    accepts_payments: bool = False  # a payment the check expects refused is made: its clean-up must leave nothing behind


FAULTS = [
    ContractFault("order", "no_idempotency_key_check", {"test_order_without_idempotency_key_is_refused"}, "order",
                  "an order without an Idempotency-Key was ACCEPTED (HTTP 201), expected 400"),
    ContractFault("order", "error_on_bad_input", {"test_malformed_order_is_a_client_error"}, "order",
                  "an order whose items are not a list was a server error (HTTP 500), expected 422"),
    ContractFault("auth", "error_on_bad_input", {"test_malformed_login_is_a_client_error"}, "auth",
                  "a login without a password was a server error (HTTP 500), expected 422"),
    ContractFault("order", "oversell", {"test_order_beyond_the_stock_is_refused"}, "order", "was ACCEPTED (HTTP 201), expected 409"),
    ContractFault("payment", "accept_mismatch", {"test_payment_must_match_the_order", "test_payment_in_another_currency_is_refused"},
                  "payment", "was ACCEPTED (HTTP 201), expected 422", accepts_payments=True),
    ContractFault("payment", "accept_foreign_currency", {"test_payment_in_another_currency_is_refused"}, "payment",
                  ("(gateway -> payment) POST", " USD for order ord_", " in EUR (polyshop-api.md Payment: a currency that differs "
                   "from the order's is 422) was ACCEPTED (HTTP 201), expected 422", "culprit: payment"), accepts_payments=True),
    ContractFault("product", "short_total", {"test_product_total_counts_the_listed_products"}, "product",
                  ("step 'list the first 100 products': [gateway] (gateway -> product) GET", "/api/products?limit=100&offset=0: "
                   "total 39 is smaller than the 40 items on the page (polyshop-api.md Product, GET /api/products: a total is "
                   "never smaller than the items on the page)", "culprit: product")),
    ContractFault("search", "padded_total", {"test_search_total_counts_the_results"}, "search",
                  ("(gateway -> search) GET", "/api/search?q=", "the page is not full (", "(polyshop-api.md Search, GET "
                   "/api/search: on a page that is not full the total equals the items' count)", "culprit: search")),
    ContractFault("inventory", "hold_beyond_stock", {"test_order_beyond_the_stock_is_refused"}, "inventory",
                  "blamed on inventory: inventory held"),
    ContractFault("payment", "refund_not_kept", {"test_repeated_payment_key_and_refund_are_idempotent"}, "payment",
                  "answered its refund 'refunded', yet its own GET reads 'succeeded'"),
    ContractFault("gateway", "drop_header", {"test_gateway_passes_the_callers_token_on"}, "gateway",
                  "with the caller's headers (Authorization) the gateway answered HTTP 401, order asked directly HTTP 404",
                  blocked=frozenset({
                      "test_another_users_order_cannot_be_paid", "test_another_users_order_is_not_readable",
                      "test_another_users_payment_is_not_readable", "test_malformed_order_is_a_client_error",
                      "test_order_beyond_the_stock_is_refused", "test_order_without_idempotency_key_is_refused",
                      "test_payment_must_match_the_order", "test_repeated_payment_key_and_refund_are_idempotent",
                      "test_synthetic_account_cannot_pay_with_a_real_card", "test_payment_in_another_currency_is_refused"})),
    ContractFault("payment", "charge_real_cards", {"test_synthetic_account_cannot_pay_with_a_real_card"}, "payment",
                  "a real (non-sandbox) card for a synthetic account was ACCEPTED", accepts_payments=True),
    ContractFault("order", "leak_orders", {"test_another_users_order_is_not_readable"}, "order", "another user reading order ord_"),
    ContractFault("payment", "leak_payments", {"test_another_users_payment_is_not_readable"}, "payment", "another user reading payment pay_"),
    ContractFault("notification", "outbox_unrestricted", {"test_outbox_of_a_real_address_is_refused"}, "notification",
                  "reading the outbox of customer@example.com was ACCEPTED"),
    ContractFault("auth", "provision_anyone", {"test_only_synthetic_accounts_can_be_provisioned"}, "auth",
                  "provisioning the non-synthetic account probe-"),
    ContractFault("product", "bad_pagination", {"test_product_listing_honours_limit_and_ids"}, "product", "limit=1 gave 40 items"),
    ContractFault("order", "no_request_id", {"test_request_id_and_trace_are_propagated[order]"}, None, "X-Request-ID sent"),
    ContractFault("search", "break_trace", {"test_request_id_and_trace_are_propagated[search]"}, None,
                  "search does not continue the caller's trace"),
    ContractFault("gateway", "misroute", {"test_gateway_routes_to_service[search]"}, "gateway",
                  "the gateway does not pass /api/search/status to search", ("suites/test_health.py", *FLOWS),
                  frozenset({"test_search_index_is_fresh", "test_catalogue_product_is_found_by_name"})),
    ContractFault("inventory", "no_stock_move", {"test_order_is_confirmed_after_payment"}, "inventory",
                  "expected available -2", tuple(FLOWS)),
    ContractFault("payment", "overcharge", {"test_order_total_is_what_the_catalogue_charges"}, "payment",
                  "customers are charged what they did not order", tuple(FLOWS)),
    ContractFault("order", "wrong_total", {"test_order_total_is_what_the_catalogue_charges"}, "order", "expected", tuple(FLOWS)),
    ContractFault("order", "cancel_keeps_payment", {"test_cancelling_a_confirmed_order_refunds_and_restocks"}, "order",
                  "the customer keeps being charged", tuple(FLOWS)),
    ContractFault("notification", "duplicate_confirmation", {"test_confirmed_order_sends_one_confirmation"}, "notification",
                  "2 order_confirmed emails for the order", tuple(FLOWS)),
    ContractFault("search", "misses_new", {"test_catalogue_product_is_found_by_name"}, "search", "did not find product", tuple(FLOWS)),
]


def decisions(log: Path) -> set[str]:
    records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return {r["service"] for r in records if r["step"] == "decision"}


def run_contract(stack: StackControl, suites: tuple[str, ...], log: Path) -> SuiteRun:
    return run_suites("-m", "smoke", *suites, "--rollback", "off", f"--rollback-log={log}", stack_file=stack.stack_file)


def test_healthy_stack_keeps_the_contract(stack: StackControl, tmp_path: Path) -> None:
    run = run_contract(stack, tuple(CONTRACT), tmp_path / "log")
    assert run.returncode == 0, run.describe()
    assert len(run.ids("passed")) == 18 + 8, run.describe()


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f"{f.service}-{f.kind}")
def test_contract_fault_fails_exactly_its_check(stack: StackControl, tmp_path: Path, fault: ContractFault) -> None:
    before = read_leftovers(stack)
    stack.set_fault(fault.service, fault.kind, **fault.params)
    log = tmp_path / "rollback.jsonl"
    run = run_contract(stack, fault.suites, log)
    assert run.returncode == 1, run.describe()
    assert run.failed == fault.failed, run.describe()
    assert run.ids("blocked") == fault.blocked, run.describe()
    evidence = (fault.evidence,) if isinstance(fault.evidence, str) else fault.evidence
    for name in fault.failed:
        for part in evidence:
            assert part in run.cases[name].message, f"{name}: {part!r} not in {run.cases[name].message!r}"
    assert decisions(log) == ({fault.culprit} if fault.culprit else set()), run.describe()
    if fault.accepts_payments:  # the wrongly accepted payments were refunded, their orders cancelled
        stack.clear()
        assert new_leftovers(stack, before) == NOTHING_LEFT
