"""A SIGTERM (raised as KeyboardInterrupt at any bytecode) between a create's answer and its record: the check's
own finaliser still finds the object by its Idempotency-Key and cleans it; nothing is left for a sweep."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from polycheck.checks.orders import OrderLedger
from polycheck.clients.shop import Account
from polycheck.core.leftovers import Journal, pending

ACCOUNT = Account("probe@synthetic.polyshop.test", "not-a-real-password")
ORDER = {"id": "ord_1", "status": "pending", "total_cents": 1000, "currency": "EUR"}


class InterruptedShop:
    """Answers each create (and logs the exchange, as the real client does), then is interrupted before returning."""

    token = "check-token"

    def __init__(self, interrupt: str) -> None:
        self.interrupt, self.calls, self.seen = interrupt, [], {}
        self.client = SimpleNamespace(log=SimpleNamespace(exchanges=[]))

    def _answered(self, path: str, key: str, body: dict[str, Any], what: str) -> dict[str, Any]:
        self.client.log.exchanges.append(SimpleNamespace(
            service="gateway", method="POST", status=201, response_body=json.dumps(body),
            sent=SimpleNamespace(path=path, headers={"Idempotency-Key": key})))
        if self.interrupt == what:
            raise KeyboardInterrupt("SIGTERM")
        return body

    def create_order(self, items: list[dict[str, Any]], key: str, expect: tuple[int, ...] = (201,)) -> tuple[Any, dict[str, Any]]:
        return None, self._answered("/api/orders", key, ORDER, "order")

    def pay(self, order: dict[str, Any], card_token: str, key: str) -> dict[str, Any]:
        return self._answered("/api/payments", key, {"id": "pay_1", "status": "succeeded"}, "payment")

    def cancel(self, order_id: str) -> dict[str, Any]:
        self.calls.append(f"cancel {order_id}")
        return {"id": order_id, "status": "cancelled", "reservation_id": "res_1"}

    def order(self, order_id: str) -> dict[str, Any]:
        return {"id": order_id, "status": "cancelled", "reservation_id": "res_1"}

    def reservation(self, reservation_id: str) -> dict[str, Any]:
        return {"id": reservation_id, "status": "released"}

    def payment(self, payment_id: str) -> dict[str, Any]:
        self.calls.append(f"read {payment_id}")
        return {"id": payment_id, "status": "succeeded"}

    def refund(self, payment_id: str) -> dict[str, Any]:
        self.calls.append(f"refund {payment_id}")
        return {"id": payment_id, "status": "refunded"}


@pytest.mark.parametrize("interrupted", ["order", "payment"])
def test_a_create_interrupted_after_its_answer_is_cleaned_by_the_finaliser(tmp_path: Path, interrupted: str) -> None:
    journal = Journal(tmp_path / "leftovers.jsonl", run_id="r", env="local")
    shop = InterruptedShop(interrupted)
    ledger = OrderLedger(shop, ACCOUNT, journal=journal)  # type: ignore[arg-type]
    with pytest.raises(KeyboardInterrupt):
        order = ledger.create([{"sku": "SKU-A", "quantity": 1}])
        ledger.pay(order, "tok_sandbox_visa")
    assert ledger.clean_up() == []
    assert "cancel ord_1" in shop.calls
    if interrupted == "payment":
        assert shop.calls[-1] == "refund pay_1", shop.calls
    assert pending(journal, 0) == [], "the finaliser cleaned what the interrupted create made: nothing for a sweep"


def test_a_create_that_never_answered_stays_for_the_sweep(tmp_path: Path) -> None:
    """No answer in the log: the finaliser cannot know the id; the journal's intent is the sweep's to replay."""
    journal = Journal(tmp_path / "leftovers.jsonl", run_id="r", env="local")
    shop = InterruptedShop("none")
    ledger = OrderLedger(shop, ACCOUNT, journal=journal)  # type: ignore[arg-type]

    def never_answered(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt("SIGTERM")

    shop.create_order = never_answered  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        ledger.create([{"sku": "SKU-A", "quantity": 1}])
    assert ledger.clean_up() == []
    assert [e.kind for e in pending(journal, 0)] == ["order"]
