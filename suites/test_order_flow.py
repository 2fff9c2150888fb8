"""Runbook Step 4 "Order create → Payment → Reservation" and Section 6 synthetic "create order", "payment sandbox".

These checks judge order, payment and inventory together; each step names the service that owns it, and
when an asynchronous move does not happen, the state left behind decides which of the three broke it.
"""

from __future__ import annotations

import pytest

from polycheck.checks import diagnosis
from polycheck.core.config import EnvConfig
from polycheck.checks.flow import describe_order, step, wait_for
from polycheck.checks.orders import OrderLedger, SkuPool
from polycheck.clients.shop import new_idempotency_key

pytestmark = [pytest.mark.smoke, pytest.mark.synthetic, pytest.mark.concurrent,
              pytest.mark.rollback("order", "payment", "inventory")]
QTY = 2
FAILED_STATES = ("payment_failed", "cancelled")


def test_repeated_idempotency_key_returns_the_same_order(orders: OrderLedger, sku_pool: SkuPool) -> None:
    """Runbook Section 8 idempotent handling: the same Idempotency-Key again returns the same order, not a second one."""
    key, sku = new_idempotency_key(), sku_pool.next()
    with step(f"create an order of {QTY} x {sku} with Idempotency-Key {key}", blame="order"):
        first = orders.create([{"sku": sku, "qty": QTY}], key)
    with step(f"repeat the request with the same Idempotency-Key {key}", blame="order"):
        again = orders.create([{"sku": sku, "qty": QTY}], key, expect=(200, 201))
        assert again["id"] == first["id"], (
            f"the repeated Idempotency-Key {key} created a second order {again['id']} beside {first['id']}: "
            "retries would double-charge customers"
        )


def test_order_total_is_what_the_catalogue_charges(orders: OrderLedger, sku_pool: SkuPool, env_config: EnvConfig) -> None:
    """polyshop-api.md: an order's total is the catalogue price times the quantity, and the payment charges exactly that."""
    shop, sku = orders.shop, sku_pool.next()
    with step(f"read the catalogue price of {sku}", blame="product"):
        product = orders.product(sku)
    with step(f"create an order of {QTY} x {sku}", blame="order"):
        order = orders.create([{"sku": sku, "qty": QTY}])
        expected = product["price_cents"] * QTY
        assert (order["total_cents"], order["currency"]) == (expected, product["currency"]), (
            f"order {order['id']} totals {order['total_cents']} {order['currency']} for {QTY} x {sku} at "
            f"{product['price_cents']} {product['currency']}: expected {expected} {product['currency']}"
        )
    with step(f"pay order {order['id']}: the payment charges the order's total", blame="payment"):
        payment = orders.pay(order, env_config.synthetic.card_token)
        assert payment["amount_cents"] == order["total_cents"], (
            f"payment {payment['id']} charged {payment['amount_cents']} for order {order['id']} of {order['total_cents']}: "
            "customers are charged what they did not order"
        )
        assert shop.payment(payment["id"])["amount_cents"] == order["total_cents"], f"payment {payment['id']} reads another amount later"


def test_order_is_confirmed_after_payment(orders: OrderLedger, sku_pool: SkuPool, env_config: EnvConfig) -> None:
    """Runbook Step 4: order → payment (sandbox card) → confirmed, reservation confirmed, stock moved by exactly the quantity."""
    shop, sku, deadline = orders.shop, sku_pool.next(), env_config.thresholds.order_confirmation_seconds
    with step(f"read the stock of {sku}", blame="inventory"):
        before = shop.stock(sku)
    with step(f"create an order of {QTY} x {sku}", blame="order"):
        order = orders.create([{"sku": sku, "qty": QTY}])
        assert order["status"] == "pending_payment", f"new order {order['id']} is {order['status']!r}, expected 'pending_payment'"
    with step(f"order {order['id']} holds stock", blame="inventory"):
        held = shop.reservation(shop.order(order["id"])["reservation_id"])
        assert (held["status"], held["sku"], held["qty"]) == ("held", sku, QTY), f"reservation after create: {held}"
    card = env_config.synthetic.card_token
    with step(f"pay order {order['id']} ({order['total_cents']} {order['currency']}) with {card}", blame="payment"):
        payment = orders.pay(order, card)
        assert payment["status"] == "succeeded", f"payment {payment['id']} of order {order['id']} with {card} is {payment['status']!r}, expected 'succeeded'"
    with step(f"order {order['id']} moves to confirmed after payment {payment['id']}", blame="order",
              diagnose=lambda: diagnosis.why_not_confirmed(shop, order["id"], payment["id"])):
        confirmed = wait_for(
            lambda: shop.order(order["id"]), lambda o: o["status"] == "confirmed", timeout=deadline,
            what=f"order {order['id']} confirmed after payment {payment['id']}", describe=describe_order,
            stop=lambda o: o["status"] in FAILED_STATES,
        )
    with step(f"reservation {confirmed['reservation_id']} of order {order['id']} is confirmed", blame="inventory"):
        reservation = shop.reservation(confirmed["reservation_id"])
        assert reservation["status"] == "confirmed", f"reservation {reservation['id']} is {reservation['status']!r} while its order is confirmed"
    with step(f"stock of {sku} moved by exactly {QTY}", blame="inventory"):
        after = shop.stock(sku)
        assert (after["available"], after["reserved"]) == (before["available"] - QTY, before["reserved"]), (
            f"{sku}: before available={before['available']} reserved={before['reserved']}, "
            f"after available={after['available']} reserved={after['reserved']}; expected available -{QTY}, reserved unchanged"
        )


def test_declined_payment_fails_the_order_and_releases_stock(orders: OrderLedger, sku_pool: SkuPool, env_config: EnvConfig) -> None:
    """Runbook Section 6 payment sandbox: a declined card ends in payment_failed with the held stock released."""
    shop, sku, deadline = orders.shop, sku_pool.next(), env_config.thresholds.order_confirmation_seconds
    with step(f"read the stock of {sku}", blame="inventory"):
        before = shop.stock(sku)
    with step(f"create an order of {QTY} x {sku}", blame="order"):
        order = orders.create([{"sku": sku, "qty": QTY}])
    card = env_config.synthetic.decline_card_token
    with step(f"pay order {order['id']} with {card}", blame="payment"):
        payment = orders.pay(order, card)
        assert payment["status"] == "declined", f"payment {payment['id']} with the declining card {card} is {payment['status']!r}"
    with step(f"order {order['id']} moves to payment_failed after declined payment {payment['id']}", blame="order",
              diagnose=lambda: diagnosis.why_not_failed(shop, order["id"], payment["id"])):
        failed = wait_for(
            lambda: shop.order(order["id"]), lambda o: o["status"] == "payment_failed", timeout=deadline,
            what=f"order {order['id']} payment_failed after payment {payment['id']}", describe=describe_order,
            stop=lambda o: o["status"] in ("confirmed", "cancelled"),
        )
    with step(f"reservation {failed['reservation_id']} is released and the stock of {sku} is back", blame="inventory"):
        wait_for(
            lambda: shop.reservation(failed["reservation_id"]), lambda r: r["status"] == "released", timeout=deadline,
            what=f"reservation {failed['reservation_id']} of order {order['id']} released",
            describe=lambda r: f"status {r['status']!r}", stop=lambda r: r["status"] == "confirmed",
        )
        after = shop.stock(sku)
        assert (after["available"], after["reserved"]) == (before["available"], before["reserved"]), (
            f"{sku}: before available={before['available']} reserved={before['reserved']}, "
            f"after available={after['available']} reserved={after['reserved']}; the declined order's stock was not released"
        )


def test_cancelled_order_releases_its_stock(orders: OrderLedger, sku_pool: SkuPool, env_config: EnvConfig) -> None:
    """Runbook Section 4 safety: cancelling an unpaid order releases its reservation and puts the stock back."""
    shop, sku = orders.shop, sku_pool.next()
    with step(f"read the stock of {sku}", blame="inventory"):
        before = shop.stock(sku)
    with step(f"create an order of {QTY} x {sku}", blame="order"):
        order = orders.create([{"sku": sku, "qty": QTY}])
    with step(f"cancel order {order['id']}", blame="order"):
        cancelled = shop.cancel(order["id"])
        assert cancelled["status"] == "cancelled", f"order {order['id']} is {cancelled['status']!r} after cancel"
    with step(f"the stock of {sku} is back after cancelling order {order['id']}", blame="inventory",
              diagnose=lambda: diagnosis.why_stock_not_back(shop, order["id"])):
        wait_for(
            lambda: shop.stock(sku), lambda s: (s["available"], s["reserved"]) == (before["available"], before["reserved"]),
            timeout=env_config.thresholds.order_confirmation_seconds,
            what=f"{sku} back to available={before['available']} reserved={before['reserved']}",
            describe=lambda s: f"available={s['available']} reserved={s['reserved']}",
        )


def test_cancelling_a_confirmed_order_refunds_and_restocks(orders: OrderLedger, sku_pool: SkuPool, env_config: EnvConfig) -> None:
    """polyshop-api.md cancel: from any status; a confirmed order's reservation is released and its payment refunded."""
    shop, sku, deadline = orders.shop, sku_pool.next(), env_config.thresholds.order_confirmation_seconds
    with step(f"read the stock of {sku}", blame="inventory"):
        before = shop.stock(sku)
    with step(f"create, pay and confirm an order of {QTY} x {sku}", blame="order",
              diagnose=lambda: diagnosis.why_not_confirmed(shop, order["id"], payment["id"])):
        order = orders.create([{"sku": sku, "qty": QTY}])
        payment = orders.pay(order, env_config.synthetic.card_token)
        wait_for(lambda: shop.order(order["id"]), lambda o: o["status"] == "confirmed", timeout=deadline,
                 what=f"order {order['id']} confirmed", describe=describe_order, stop=lambda o: o["status"] in FAILED_STATES)
    with step(f"cancel confirmed order {order['id']}", blame="order"):
        cancelled = shop.cancel(order["id"])
        assert cancelled["status"] == "cancelled", f"order {order['id']} is {cancelled['status']!r} after cancel"
        again = shop.cancel(order["id"])
        assert again["status"] == "cancelled", f"cancelling order {order['id']} twice gave {again['status']!r}: cancel is not idempotent"
    with step(f"payment {payment['id']} of cancelled order {order['id']} is refunded", blame="order",
              diagnose=lambda: diagnosis.why_not_refunded(shop, order["id"], payment["id"])):
        wait_for(lambda: shop.payment(payment["id"]), lambda p: p["status"] == "refunded", timeout=deadline,
                 what=f"payment {payment['id']} refunded after order {order['id']} was cancelled",
                 describe=lambda p: f"payment {p['id']} status {p['status']!r} (the customer keeps being charged)")
    with step(f"the stock of {sku} is back after cancelling confirmed order {order['id']}", blame="inventory",
              diagnose=lambda: diagnosis.why_stock_not_back(shop, order["id"])):
        wait_for(
            lambda: shop.stock(sku), lambda s: (s["available"], s["reserved"]) == (before["available"], before["reserved"]),
            timeout=deadline, what=f"{sku} back to available={before['available']} reserved={before['reserved']}",
            describe=lambda s: f"available={s['available']} reserved={s['reserved']}",
        )
