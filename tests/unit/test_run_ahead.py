"""What checks that run at once share safely: SKUs leased to one check at a time, a check's scope built once, and a
clean-up that skips what the check already saw final and signs in again only when its token is refused."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import pytest

from polycheck.scope.checkscope import CheckScope
from polycheck.checks.orders import Leases, OrderLedger, SkuPool
from polycheck.clients.shop import Account


@pytest.fixture(autouse=True)
def one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests may run in an xdist worker of the project's own tests: the pool must not split the SKUs."""
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)


def lease(pool: SkuPool, leases: Leases) -> str:
    with leases.holding():
        return pool.next()


def test_checks_running_at_once_never_share_a_sku() -> None:
    pool = SkuPool(["SKU-A", "SKU-B"], wait_seconds=10)
    first, second = Leases(), Leases()
    assert {lease(pool, first), lease(pool, second)} == {"SKU-A", "SKU-B"}
    third, got = Leases(), []
    waiting = threading.Thread(target=lambda: got.append(lease(pool, third)))
    waiting.start()
    waiting.join(0.3)
    assert waiting.is_alive() and not got, "a third check took a SKU another running check holds"
    first.release()
    waiting.join(10)
    assert got == ["SKU-A"], got


def test_a_sku_nobody_frees_is_shared_after_the_wait_rather_than_blocking_the_run() -> None:
    pool = SkuPool(["SKU-A"], wait_seconds=0.05)
    holder = Leases()
    assert lease(pool, holder) == "SKU-A"
    assert lease(pool, Leases()) == "SKU-A"  # shared (not leased): the run goes on


def test_the_next_check_to_take_a_sku_first_settles_the_previous_checks_orders() -> None:
    pool = SkuPool(["SKU-A"], wait_seconds=10)
    settled: list[str] = []
    first = Leases()
    sku = lease(pool, first)
    first.before_reuse(sku, lambda: settled.append("reservation of ord_1 released"))
    first.release()
    assert settled == [], "settled although no check took the SKU again"
    second = Leases()
    assert lease(pool, second) == sku
    assert settled == ["reservation of ord_1 released"]
    second.release()
    assert lease(pool, Leases()) == sku and len(settled) == 1, "settled twice"


def test_settling_a_sku_the_check_does_not_hold_happens_at_once() -> None:
    done: list[bool] = []
    Leases().before_reuse("SKU-Z", lambda: done.append(True))
    assert done == [True]


def test_without_a_running_check_the_least_recently_used_sku_comes_next() -> None:
    pool = SkuPool(["SKU-A", "SKU-B", "SKU-C"])
    assert [pool.next() for _ in range(4)] == ["SKU-A", "SKU-B", "SKU-C", "SKU-A"]


def test_a_scope_builds_once_and_raises_the_same_error_again() -> None:
    scope = CheckScope(None, None, None)  # type: ignore[arg-type]
    calls: list[int] = []

    def login() -> str:
        calls.append(1)
        raise RuntimeError("auth refused the login")

    for _ in range(2):
        with pytest.raises(RuntimeError, match="auth refused"):
            scope.once("signed-in", login)
    assert calls == [1]
    assert scope.once("value", lambda: 42) == 42 and scope.once("value", lambda: 0) == 42
    assert scope.clean_up() == [] and scope.clean_up() == []


# -- the clean-up of a check's orders -----------------------------------------------------------------------------
@dataclass
class Seen:
    status: int


@dataclass
class FakeLog:
    exchanges: list[Seen] = field(default_factory=list)


@dataclass
class FakeClient:
    log: FakeLog = field(default_factory=FakeLog)


class FakeShop:
    """The few calls the clean-up makes; a token the shop refuses answers 401."""

    def __init__(self, calls: list[str], token: str = "check-token", refused: frozenset[str] = frozenset(),
                 orders: dict[str, dict[str, Any]] | None = None, seen: dict[str, dict[str, Any]] | None = None) -> None:
        self.calls, self.token, self.refused = calls, token, refused
        self.client = FakeClient()
        self.orders = orders if orders is not None else {}
        self.seen = seen if seen is not None else {}

    def _answer(self, what: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(f"{what} as {self.token}")
        if self.token in self.refused:
            self.client.log.exchanges.append(Seen(401))
            pytest.fail(f"{what}: 401")
        self.client.log.exchanges.append(Seen(200))
        return body

    def signed_in(self, token: str) -> FakeShop:
        return FakeShop(self.calls, token, self.refused, self.orders, self.seen)

    def login(self, account: Account) -> dict[str, Any]:
        self.calls.append("login")  # with the password, not a token
        return {"access_token": "fresh-token"}

    def cancel(self, order_id: str) -> dict[str, Any]:
        return self._answer(f"cancel {order_id}", {"id": order_id, "status": "cancelled"})

    def order(self, order_id: str) -> dict[str, Any]:
        return self._answer(f"read {order_id}", {"id": order_id, "status": "cancelled", "reservation_id": f"res_of_{order_id}"})

    def reservation(self, reservation_id: str) -> dict[str, Any]:
        return self._answer(f"read {reservation_id}", {"id": reservation_id, "status": "released"})

    def payment(self, payment_id: str) -> dict[str, Any]:
        return self._answer(f"read {payment_id}", {"id": payment_id, "status": "refunded"})

    def refund(self, payment_id: str) -> dict[str, Any]:
        return self._answer(f"refund {payment_id}", {"id": payment_id, "status": "refunded"})


ACCOUNT = Account("probe@synthetic.polyshop.test", "not-a-real-password")


def test_clean_up_skips_what_the_check_saw_final_and_uses_its_own_token() -> None:
    calls: list[str] = []
    seen = {"ord_1": {"id": "ord_1", "status": "cancelled", "reservation_id": "res_1"},
            "res_1": {"id": "res_1", "status": "released"}, "pay_1": {"id": "pay_1", "status": "refunded"},
            "ord_2": {"id": "ord_2", "status": "confirmed"}, "pay_2": {"id": "pay_2", "status": "succeeded"}}
    ledger = OrderLedger(FakeShop(calls, seen=seen), ACCOUNT, order_ids=["ord_1", "ord_2"],  # type: ignore[arg-type]
                         payment_ids=["pay_1", "pay_2"])
    assert ledger.clean_up() == []
    assert calls == ["cancel ord_2 as check-token", "read ord_2 as check-token", "read res_of_ord_2 as check-token",
                     "read pay_2 as check-token"], calls


def test_clean_up_signs_in_again_only_when_the_checks_token_is_refused() -> None:
    calls: list[str] = []
    ledger = OrderLedger(FakeShop(calls, refused=frozenset({"check-token"})), ACCOUNT,  # type: ignore[arg-type]
                         payment_ids=["pay_1"])
    assert ledger.clean_up() == []
    assert calls == ["read pay_1 as check-token", "login", "read pay_1 as fresh-token"], calls


def test_a_leased_skus_settle_waits_for_the_next_check_that_takes_it() -> None:
    calls: list[str] = []
    pool, leases = SkuPool(["SKU-A"]), Leases()
    sku = lease(pool, leases)
    ledger = OrderLedger(FakeShop(calls), ACCOUNT, order_ids=["ord_1"], leases=leases,  # type: ignore[arg-type]
                         skus={"ord_1": [sku]})
    assert ledger.clean_up() == []
    leases.release()
    assert calls == ["cancel ord_1 as check-token"], calls
    lease(pool, Leases())
    assert calls[1:] == ["read ord_1 as check-token", "read res_of_ord_1 as check-token"], calls
