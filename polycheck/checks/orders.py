"""Synthetic orders and the SKUs they use: every order a check creates is cancelled and refunded afterwards."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable, Iterator

import httpx
import pytest

from polycheck.clients.leases import CrossRunLeases
from polycheck.core.attribution import GATEWAY
from polycheck.core.failures import CheckFailure, check_failed
from polycheck.core.leftovers import ORDER, PAYMENT, Journal
from polycheck.core.polling import PollTimeout, poll
from polycheck.clients.shop import Account, ShopApi, new_idempotency_key, payment_body

SETTLED = ("refunded", "declined")
CLEANUP_ERRORS = (Exception, pytest.fail.Exception)
CLEANUP_SECONDS = 3.0
SKU_WAIT_SECONDS = 120.0  # how long a check waits for a SKU no other running check holds, before sharing one
# (sharing can make a stock-asserting check read another's order: the wait is long, as a slow environment with few
# synthetic SKUs and 16 checks at a time can hold each SKU for several seconds per check)


@dataclass
class OrderLedger:
    """Creates synthetic orders and payments through the API and remembers them for the clean-up."""

    shop: ShopApi
    account: Account
    order_ids: list[str] = field(default_factory=list)
    payment_ids: list[str] = field(default_factory=list)
    journal: Journal | None = None  # written before each create, so a killed run's data can be swept
    journal_password: str | None = None  # the account's password, only when the run provisioned it itself
    keys: dict[str, str] = field(default_factory=dict)  # order or payment id -> its Idempotency-Key
    leases: Leases | None = None  # the check's SKU leases: a cancelled order's SKU settles before its next use
    skus: dict[str, list[str]] = field(default_factory=dict)  # order id -> the SKUs it holds
    intended: dict[str, str] = field(default_factory=dict)  # Idempotency-Key -> order | payment, before each create

    def _intend(self, key: str, kind: str, body: dict[str, Any]) -> None:
        self.intended[key] = kind
        if self.journal is not None:
            self.journal.intend(key, kind, self.account.email, body, self.journal_password)

    def _created(self, key: str, object_id: str, ids: list[str]) -> None:
        # in memory first, then in the journal: a SIGTERM (a KeyboardInterrupt at any bytecode) that lands between
        # the two leaves an object the finaliser knows and cleans, never one the journal calls created and the
        # finaliser does not know (left for a sweep)
        self.keys.setdefault(object_id, key)
        if object_id not in ids:
            ids.append(object_id)
        if self.journal is not None:
            self.journal.created(key, object_id)

    def create(self, items: list[dict[str, Any]], key: str | None = None, expect: tuple[int, ...] = (201,)) -> dict[str, Any]:
        __tracebackhide__ = True
        key = key or new_idempotency_key()
        self._intend(key, ORDER, {"items": items})
        try:
            _, order = self.shop.create_order(items, key, expect=expect)
        except CheckFailure:
            for made in self._replayed(key, "/api/orders"):
                self._created(key, made, self.order_ids)
            raise
        self.skus.setdefault(order["id"], [str(item.get("sku")) for item in items if isinstance(item, dict)])
        self._created(key, order["id"], self.order_ids)
        return order

    def pay(self, order: dict[str, Any], card_token: str, key: str | None = None) -> dict[str, Any]:
        __tracebackhide__ = True
        key = key or new_idempotency_key()
        self._intend(key, PAYMENT, payment_body(order, card_token))
        try:
            payment = self.shop.pay(order, card_token, key)
        except CheckFailure:
            for made in self._replayed(key, "/api/payments"):
                self._created(key, made, self.payment_ids)
            raise
        self._created(key, payment["id"], self.payment_ids)
        return payment

    def attempt_payment(self, order: dict[str, Any], card_token: str, *, by: ShopApi | None = None,
                        **changes: Any) -> httpx.Response:
        """POST a payment of `order` with `changes` (one the service should refuse), as `by` (default: this account);
        a payment it accepts all the same is recorded for the clean-up (refunded, its order cancelled)."""
        __tracebackhide__ = True
        body = {**payment_body(order, card_token), **changes}
        response = (by or self.shop).raw("POST", "/api/payments", json_body=body, headers={"Idempotency-Key": new_idempotency_key()})
        if response.status_code == 201:
            try:
                self.record_payment(response.json())
            except ValueError:  # no JSON: nothing to refund by id; the order's cancel refunds what it captured
                pass
        return response

    def _direct(self, path: str, key: str | None = None) -> list[dict[str, Any]]:
        """What a write refused through the gateway did when it was replayed straight to its service to judge the
        gateway (`ServiceClient.blame_answer`): the bodies of those direct answers that succeeded, latest last."""
        done = []
        for seen in self.shop.client.log.exchanges:
            if (seen.service != GATEWAY and seen.method == "POST" and seen.status in (200, 201) and seen.sent is not None
                    and seen.sent.path == path and (key is None or seen.sent.headers.get("Idempotency-Key") == key)):
                try:
                    body = json.loads(seen.response_body)
                except ValueError:
                    continue
                if isinstance(body, dict) and isinstance(body.get("id"), str):
                    done.append(body)
        return done

    def _replayed(self, key: str, path: str) -> list[str]:
        """The ids a refused create, replayed directly, created there with this Idempotency-Key (for the clean-up)."""
        return list(dict.fromkeys(body["id"] for body in self._direct(path, key)))

    def _or_direct(self, action: Callable[[], dict[str, Any]], path: str) -> Callable[[], dict[str, Any]]:
        """A clean-up call that, refused through the gateway, was done by its direct replay: that answer counts."""
        def attempt() -> dict[str, Any]:
            try:
                return action()
            except CheckFailure:
                done = self._direct(path)
                if done:
                    return done[-1]
                raise
        return attempt

    def _recover_interrupted(self) -> None:
        """A create whose answer arrived but was never recorded (a SIGTERM or Ctrl-C between the two) is found in
        the exchange log by its Idempotency-Key, so the finaliser cleans it instead of leaving it for a sweep."""
        known = set(self.keys.values())
        for key, kind in self.intended.items():
            if key in known:
                continue
            path = "/api/orders" if kind == ORDER else "/api/payments"
            for seen in self.shop.client.log.exchanges:
                if (seen.method == "POST" and seen.status in (200, 201) and seen.sent is not None
                        and seen.sent.path == path and seen.sent.headers.get("Idempotency-Key") == key):
                    try:
                        body = json.loads(seen.response_body)
                    except ValueError:
                        continue
                    if isinstance(body, dict) and isinstance(body.get("id"), str):
                        self._created(key, body["id"], self.order_ids if kind == ORDER else self.payment_ids)
                        break

    def record_payment(self, payment: dict[str, Any]) -> None:
        """A payment created outside `pay` (e.g. one the service should have refused), for the clean-up."""
        if isinstance(payment, dict) and payment.get("id") and payment["id"] not in self.payment_ids:
            self.payment_ids.append(payment["id"])

    def product(self, sku: str) -> dict[str, Any]:
        """The catalogue's product with this SKU (paging through the catalogue)."""
        __tracebackhide__ = True
        offset = 0
        while True:
            page = self.shop.products(limit=100, offset=offset)
            for item in page["items"]:
                if item.get("sku") == sku:
                    return item
            offset += len(page["items"])
            if not page["items"] or offset >= int(page.get("total") or 0):
                check_failed(f"no product with SKU {sku} in the catalogue ({offset} products read)", culprit="product")

    def clean_up(self) -> list[str]:
        """Cancel every order and refund every payment; what could not be cleaned, as sentences. With the check's
        own token (a fresh sign-in only once it is refused: a check that outlived its token)."""
        problems: list[str] = []
        shops = [self.shop]

        def signed_in(action: Callable[[ShopApi], dict[str, Any]]) -> dict[str, Any]:
            try:
                return action(shops[-1])
            except CLEANUP_ERRORS:
                if len(shops) > 1 or not _refused(shops[-1]):
                    raise
            shops.append(self.shop.signed_in(self.shop.login(self.account)["access_token"]))
            return action(shops[-1])

        self._recover_interrupted()
        if not self.shop.token and (self.order_ids or self.payment_ids):
            try:
                shops.append(self.shop.signed_in(self.shop.login(self.account)["access_token"]))
            except CLEANUP_ERRORS as exc:  # a failed login must not hide the list of leftovers
                return [f"could not sign in to clean up orders {self.order_ids} and payments {self.payment_ids}: {exc}"]
        for order_id in self.order_ids:
            try:
                seen = self.shop.seen.get(order_id, {})  # cancelled is final: what the check saw needs no second cancel
                cancelled = seen if seen.get("status") == "cancelled" else \
                    _retried(self._or_direct(lambda: signed_in(lambda shop: shop.cancel(order_id)),
                                             f"/api/orders/{order_id}/cancel"), f"cancel order {order_id}")
                if cancelled.get("status") != "cancelled":
                    problems.append(f"order {order_id} reads {cancelled.get('status')!r} after cancel")
                else:
                    self._cleaned(order_id)
                    self._settle_before_reuse(shops[-1], order_id)
            except CLEANUP_ERRORS as exc:
                problems.append(f"order {order_id} could not be cancelled: {exc}")
        for payment_id in self.payment_ids:
            try:
                seen = self.shop.seen.get(payment_id, {})  # refunded and declined are final
                payment = seen if seen.get("status") in SETTLED else \
                    _retried(lambda: signed_in(lambda shop: shop.payment(payment_id)), f"read payment {payment_id}")
                if payment["status"] not in SETTLED:
                    payment = _retried(self._or_direct(lambda: signed_in(lambda shop: shop.refund(payment_id)),
                                                       f"/api/payments/{payment_id}/refund"), f"refund payment {payment_id}")
                if payment["status"] not in SETTLED:
                    problems.append(f"payment {payment_id} reads {payment['status']!r} after refund")
                else:
                    self._cleaned(payment_id)
            except CLEANUP_ERRORS as exc:
                problems.append(f"payment {payment_id} could not be refunded: {exc}")
        return problems

    def _settle_before_reuse(self, shop: ShopApi, order_id: str) -> None:
        """The next check to take this order's SKU waits for its reservation to read released (none takes it: no wait)."""
        done: list[bool] = []

        def settle() -> None:
            if not done:
                done.append(True)
                _settle(shop, order_id, self.shop.seen)

        skus = self.skus.get(order_id) or []
        leases = self.leases
        if leases is None or not skus:
            settle()
            return
        for sku in skus:
            leases.before_reuse(sku, settle)

    def _cleaned(self, object_id: str) -> None:
        key = self.keys.get(object_id)
        if self.journal is not None and key is not None:
            self.journal.cleaned(key)


def _retried(action: Callable[[], dict[str, Any]], what: str) -> dict[str, Any]:
    """Clean-up calls are idempotent: a transient failure is tried again, for up to CLEANUP_SECONDS."""
    try:
        return poll(action, lambda _: True, timeout=CLEANUP_SECONDS, what=what, interval=0.1, max_interval=0.5,
                    retry_on=(pytest.fail.Exception,))
    except PollTimeout as exc:
        raise RuntimeError(str(exc)) from None



def _refused(shop: ShopApi) -> bool:
    """The last answer this API got was 401: its token no longer works."""
    exchanges = shop.client.log.exchanges
    return bool(exchanges) and exchanges[-1].status == 401


def _settle(shop: ShopApi, order_id: str, seen: dict[str, dict[str, Any]]) -> None:
    """Wait (briefly) until a cancelled order's reservation reads released, so the next check to use its SKU
    reads a stock that no longer moves. Best effort: the leftover check is the cancel's answer, not this."""
    try:
        reservation_id = seen.get(order_id, {}).get("reservation_id") or shop.order(order_id).get("reservation_id")
        if reservation_id and seen.get(reservation_id, {}).get("status") != "released":
            poll(lambda: shop.reservation(reservation_id), lambda r: r.get("status") == "released", timeout=CLEANUP_SECONDS,
                 what=f"reservation {reservation_id} released", interval=0.05, max_interval=0.25)
    except CLEANUP_ERRORS:
        return


class Leases:
    """What one running check holds (its SKUs): let go of together when the check has cleaned up, with what the
    next check to take each SKU must do first (wait for this check's cancelled reservations to read released)."""

    def __init__(self) -> None:
        self._held: dict[str, SkuPool] = {}
        self._before_reuse: dict[str, list[Callable[[], None]]] = {}
        self._lock = threading.Lock()

    def add(self, sku: str, pool: SkuPool) -> None:
        with self._lock:
            self._held[sku] = pool

    def before_reuse(self, sku: str, action: Callable[[], None]) -> None:
        """Have the next check that takes `sku` run `action` first; at once when this check does not hold it."""
        with self._lock:
            held = sku in self._held
            if held:
                self._before_reuse.setdefault(sku, []).append(action)
        if not held:
            action()

    def release(self) -> None:
        with self._lock:
            held, self._held = self._held, {}
            pending, self._before_reuse = self._before_reuse, {}
        for sku, pool in held.items():
            pool.let_go(sku, pending.get(sku, []))

    @contextmanager
    def holding(self) -> Iterator[Leases]:
        """While inside, what this thread's check takes from a pool is held in these leases."""
        token = _HOLDER.set(self)
        try:
            yield self
        finally:
            _HOLDER.reset(token)


_HOLDER: ContextVar[Leases | None] = ContextVar("polycheck_leases", default=None)


class SkuPool:
    """SKUs for synthetic orders, split between xdist workers and leased to one running check at a time, so checks
    that run at once never read each other's stock moves; with `cross` (polycheck.clients.leases), no check of
    another run holds it either. The least recently used free SKU comes next."""

    def __init__(self, skus: list[str], wait_seconds: float = SKU_WAIT_SECONDS, cross: CrossRunLeases | None = None) -> None:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
        count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
        index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
        mine = sorted(skus)[index::count] or sorted(skus)
        # across runs every SKU is in play: another run's worker split is not this run's
        self._order: deque[str] = deque(mine + sorted(set(skus) - set(mine)) if cross is not None else mine)
        self._leased: set[str] = set()
        self._before_reuse: dict[str, list[Callable[[], None]]] = {}
        self._free = threading.Condition()
        self.wait_seconds = wait_seconds
        self.cross = cross

    def _take(self, free: list[str]) -> str | None:
        """The first free SKU whose cross-run lease this run gets (the first free one without cross-run leases)."""
        if self.cross is None:
            return free[0] if free else None
        return next((sku for sku in free if self.cross.take(sku)), None)

    def next(self) -> str:
        """A SKU no other running check holds, in this run or another (waiting for one up to `wait_seconds`; then,
        within this run, sharing the least recently used; across runs the check cannot judge the stock: inconclusive)."""
        holder = _HOLDER.get()
        deadline = time.monotonic() + self.wait_seconds
        pause = 0.05
        with self._free:
            while True:
                free = [sku for sku in self._order if sku not in self._leased]
                sku = self._take(free) if holder is not None else (free[0] if free else None)
                remaining = deadline - time.monotonic()
                if sku is not None or remaining <= 0:
                    break
                if free and self.cross is not None:  # free here, held by other runs: look again soon
                    self._free.wait(min(remaining, pause))
                    pause = min(pause * 2, 1.0)
                else:
                    self._free.wait(remaining)
            if sku is None and self.cross is not None and holder is not None:
                from polycheck.core.failures import inconclusive

                inconclusive(f"every synthetic SKU ({len(self._order)}) is held by another run against this environment "
                             f"({self.cross.where}) for {self.wait_seconds:g} s: a stock assertion cannot tell its own "
                             f"order's moves from theirs (add SKUs to synthetic.skus, or run fewer at once)")
            sku = sku if sku is not None else self._order[0]
            self._order.remove(sku)
            self._order.append(sku)
            if holder is not None and sku not in self._leased and (free or self.cross is not None):
                self._leased.add(sku)
                holder.add(sku, self)
            first = self._before_reuse.pop(sku, [])
        for action in first:  # the previous check's cancelled reservations settle before this one reads the stock
            action()
        return sku

    def let_go(self, sku: str, before_reuse: list[Callable[[], None]] = ()) -> None:  # type: ignore[assignment]
        if self.cross is not None:  # the next taker may be another run: settle first, then give the SKU back
            with self._free:
                pending = self._before_reuse.pop(sku, [])
            for action in [*pending, *before_reuse]:
                action()
            before_reuse = []
            self.cross.give_back(sku)
        with self._free:
            self._leased.discard(sku)
            if before_reuse:
                self._before_reuse.setdefault(sku, []).extend(before_reuse)
            self._free.notify_all()
