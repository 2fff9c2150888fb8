"""Runbook Section 6 synthetic tests, looking back: what earlier runs left that only a later run can judge."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from polycheck.checks.flow import step
from polycheck.checks.look_back import earlier, late_duplicates, refunds_undone
from polycheck.clients.shop import ShopApi
from polycheck.core.config import EnvConfig, MissingSecretError
from polycheck.core.leftovers import ORDER, PAYMENT, Entry, Journal
from polycheck.scope.checkscope import CheckScope
from polycheck.scope.cleanup import credentials
from polycheck.scope.run import Run

pytestmark = [pytest.mark.synthetic]


class Owners:
    """The API signed in as each entry's own account (the one that created it), once per account; None for an account
    an earlier run provisioned that this environment no longer knows (a local stack started anew)."""

    def __init__(self, scope: CheckScope, config: EnvConfig) -> None:
        self.scope, self.config = scope, config
        self.shops: dict[str, ShopApi | None] = {}

    def of(self, entry: Entry) -> ShopApi | None:
        if entry.email not in self.shops:
            try:
                account = credentials(self.config, entry)
            except MissingSecretError as exc:
                pytest.skip(f"cannot look back at {entry.describe()}: {exc}")
            try:
                self.shops[entry.email] = self.scope.signed_in(account)
            except (Exception, pytest.fail.Exception):
                if not entry.password:
                    raise  # the env's own synthetic account cannot sign in: that is the auth checks' failure too
                self.shops[entry.email] = None
        return self.shops[entry.email]


def _earlier(journal: Journal, run: Run, env_config: EnvConfig, kind: str) -> list[Any]:
    t = env_config.thresholds
    return earlier(journal.entries(), kind=kind, env=env_config.name, run_id=run.run_id,
                   settle_seconds=t.late_duplicate_seconds, horizon_seconds=t.look_back_seconds, limit=t.look_back_limit)


def test_earlier_orders_sent_no_late_duplicate_confirmation(leftovers_journal: Journal, run: Run, env_config: EnvConfig,
                                                            check_scope: CheckScope) -> None:
    """Runbook Section 6: each earlier run's order has at most one order_confirmed email, however late a second came."""
    orders = _earlier(leftovers_journal, run, env_config, ORDER)
    if not orders:
        pytest.skip(f"no order of an earlier run of {env_config.name} is {env_config.thresholds.late_duplicate_seconds:g} s "
                    f"to {env_config.thresholds.look_back_seconds:g} s old in {leftovers_journal.path}: nothing to look back at")
    with step(f"look back at {len(orders)} earlier orders' confirmation emails", blame="notification"):
        owners = Owners(check_scope, env_config)
        by_email = {order.email: order for order in orders}

        def outbox(email: str) -> list[dict[str, Any]]:
            owner = owners.of(by_email[email])
            return owner.outbox(email) if owner is not None else []

        problems = late_duplicates(orders, outbox)
        assert not problems, "late duplicate confirmation: " + "; ".join(problems)


def test_earlier_refunds_are_still_refunded(leftovers_journal: Journal, run: Run, env_config: EnvConfig,
                                            check_scope: CheckScope) -> None:
    """Runbook Section 6 (payment sandbox): a payment an earlier run refunded still reads refunded."""
    payments = [p for p in _earlier(leftovers_journal, run, env_config, PAYMENT) if p.cleaned]
    if not payments:
        pytest.skip(f"no refunded payment of an earlier run of {env_config.name} in {leftovers_journal.path}: nothing to look back at")

    owners = Owners(check_scope, env_config)

    def read(entry: Entry) -> dict[str, Any] | None:
        owner = owners.of(entry)
        if owner is None:
            return None
        answer = owner.raw("GET", f"/api/payments/{entry.id}")
        if answer.status_code == 404:
            return None  # the environment no longer knows it (a local stack started anew)
        answer.raise_for_status()
        return dict(answer.json())

    with step(f"look back at {len(payments)} earlier refunds", blame="payment"):
        try:
            problems = refunds_undone(payments, read)
        except httpx.HTTPStatusError as exc:
            raise AssertionError(f"reading an earlier payment: {exc}") from None
        assert not problems, "refund undone: " + "; ".join(problems)
