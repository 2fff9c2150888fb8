"""Runbook Step 4 "Order create → Payment → Reservation" and Section 6 synthetic "create order", "payment sandbox"."""

from __future__ import annotations

import pytest

from fixtures.orders import OrderLedger
from fixtures.synthetic import SkuPool
from polycheck.config import EnvConfig
from polycheck.flow import describe_order, step, wait_for
from polycheck.shop import new_idempotency_key

pytestmark = [pytest.mark.smoke, pytest.mark.synthetic, pytest.mark.rollback("order")]
QTY = 2


def test_repeated_idempotency_key_returns_the_same_order(orders: OrderLedger, sku_pool: SkuPool) -> None:
    """Runbook Section 8 idempotent handling: the same Idempotency-Key again returns the same order, not a second one."""
    key, sku = new_idempotency_key(), sku_pool.next()
    with step(f"create an order of {QTY} x {sku} with Idempotency-Key {key}"):
        first = orders.create([{"sku": sku, "qty": QTY}], key)
    with step(f"repeat the request with the same Idempotency-Key {key}"):
        again = orders.create([{"sku": sku, "qty": QTY}], key, expect=(200, 201))
    assert again["id"] == first["id"], (
        f"the repeated Idempotency-Key {key} created a second order {again['id']} beside {first['id']}: "
        "retries would double-charge customers"
    )


def test_order_is_confirmed_after_payment(orders: OrderLedger, sku_pool: SkuPool, env_config: EnvConfig) -> None:
    """Runbook Step 4: order → payment (sandbox card) → confirmed, reservation confirmed, stock moved by exactly the quantity."""
    shop, sku, deadline = orders.shop, sku_pool.next(), env_config.thresholds.order_confirmation_seconds
    with step(f"read the stock of {sku}"):
        before = shop.stock(sku)
    with step(f"create an order of {QTY} x {sku}"):
        order = orders.create([{"sku": sku, "qty": QTY}])
    assert order["status"] == "pending_payment", f"new order {order['id']} is {order['status']!r}, expected 'pending_payment'"
    with step(f"order {order['id']} holds stock"):
        held = shop.reservation(shop.order(order["id"])["reservation_id"])
        assert (held["status"], held["sku"], held["qty"]) == ("held", sku, QTY), f"reservation after create: {held}"
    with step(f"pay order {order['id']} ({order['total_cents']} {order['currency']}) with {env_config.synthetic.card_token}"):
        payment = orders.pay(order, env_config.synthetic.card_token)
    assert payment["status"] == "succeeded", f"payment {payment['id']} of order {order['id']} is {payment['status']!r}, expected 'succeeded'"
    with step(f"order {order['id']} moves to confirmed after payment {payment['id']}"):
        confirmed = wait_for(
            lambda: shop.order(order["id"]), lambda o: o["status"] == "confirmed", timeout=deadline,
            what=f"order {order['id']} confirmed after payment {payment['id']}", describe=describe_order,
        )
    with step(f"reservation {confirmed['reservation_id']} of order {order['id']} is confirmed"):
        reservation = shop.reservation(confirmed["reservation_id"])
        assert reservation["status"] == "confirmed", f"reservation {reservation['id']} is {reservation['status']!r}"
    with step(f"stock of {sku} moved by exactly {QTY}"):
        after = shop.stock(sku)
        assert (after["available"], after["reserved"]) == (before["available"] - QTY, before["reserved"]), (
            f"{sku}: before available={before['available']} reserved={before['reserved']}, "
            f"after available={after['available']} reserved={after['reserved']}; expected available -{QTY}, reserved unchanged"
        )


def test_declined_payment_fails_the_order_and_releases_stock(orders: OrderLedger, sku_pool: SkuPool, env_config: EnvConfig) -> None:
    """Runbook Section 6 payment sandbox: a declined card ends in payment_failed with the held stock released."""
    shop, sku, deadline = orders.shop, sku_pool.next(), env_config.thresholds.order_confirmation_seconds
    with step(f"read the stock of {sku}"):
        before = shop.stock(sku)
    with step(f"create an order of {QTY} x {sku}"):
        order = orders.create([{"sku": sku, "qty": QTY}])
    with step(f"pay order {order['id']} with {env_config.synthetic.decline_card_token}"):
        payment = orders.pay(order, env_config.synthetic.decline_card_token)
    assert payment["status"] == "declined", f"payment {payment['id']} with a declining card is {payment['status']!r}"
    with step(f"order {order['id']} moves to payment_failed after declined payment {payment['id']}"):
        failed = wait_for(
            lambda: shop.order(order["id"]), lambda o: o["status"] == "payment_failed", timeout=deadline,
            what=f"order {order['id']} payment_failed after payment {payment['id']}", describe=describe_order,
        )
    with step(f"reservation {failed['reservation_id']} is released and the stock of {sku} is back"):
        wait_for(
            lambda: shop.reservation(failed["reservation_id"]), lambda r: r["status"] == "released", timeout=deadline,
            what=f"reservation {failed['reservation_id']} of order {order['id']} released",
            describe=lambda r: f"status {r['status']!r}",
        )
        after = shop.stock(sku)
        assert (after["available"], after["reserved"]) == (before["available"], before["reserved"]), (
            f"{sku}: before available={before['available']} reserved={before['reserved']}, "
            f"after available={after['available']} reserved={after['reserved']}; the declined order's stock was not released"
        )


def test_cancelled_order_releases_its_stock(orders: OrderLedger, sku_pool: SkuPool, env_config: EnvConfig) -> None:
    """Runbook Section 4 safety: cancelling an order releases its reservation and puts the stock back."""
    shop, sku = orders.shop, sku_pool.next()
    with step(f"read the stock of {sku}"):
        before = shop.stock(sku)
    with step(f"create an order of {QTY} x {sku}"):
        order = orders.create([{"sku": sku, "qty": QTY}])
    with step(f"cancel order {order['id']}"):
        cancelled = shop.cancel(order["id"])
        assert cancelled["status"] == "cancelled", f"order {order['id']} is {cancelled['status']!r} after cancel"
    with step(f"the stock of {sku} is back after cancelling order {order['id']}"):
        after = wait_for(
            lambda: shop.stock(sku), lambda s: (s["available"], s["reserved"]) == (before["available"], before["reserved"]),
            timeout=env_config.thresholds.order_confirmation_seconds,
            what=f"{sku} back to available={before['available']} reserved={before['reserved']}",
            describe=lambda s: f"available={s['available']} reserved={s['reserved']}",
        )
        assert after["available"] == before["available"]
