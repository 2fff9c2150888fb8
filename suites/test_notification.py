"""Runbook Step 4 "Notification email simulation"."""

from __future__ import annotations

import pytest

from polycheck.checks import diagnosis
from polycheck.core.config import EnvConfig
from polycheck.checks.flow import describe_order, step, wait_for
from polycheck.checks.orders import OrderLedger, SkuPool
from polycheck.core.polling import hold
from polycheck.clients.shop import Account, ShopApi

pytestmark = [pytest.mark.smoke, pytest.mark.synthetic, pytest.mark.concurrent, pytest.mark.rollback("notification")]


def test_test_email_reaches_the_outbox(shop: ShopApi, synthetic_account: Account, env_config: EnvConfig) -> None:
    """Runbook Step 4: a smoke_test email to the synthetic address reaches the outbox within the deadline."""
    to = synthetic_account.email
    with step(f"send a smoke_test email to {to}", blame="notification"):
        message_id = shop.send_test_email(to)
    with step(f"message {message_id} reaches the outbox of {to}", blame="notification"):
        wait_for(
            lambda: shop.outbox(to), lambda msgs: any(m.get("id") == message_id for m in msgs),
            timeout=env_config.thresholds.notification_delivery_seconds,
            what=f"smoke_test message {message_id} in the outbox of {to}",
            describe=lambda msgs: f"{len(msgs)} messages, ids {[m.get('id') for m in msgs][-5:]}",
        )


def test_confirmed_order_sends_one_confirmation(orders: OrderLedger, sku_pool: SkuPool, synthetic_account: Account, env_config: EnvConfig) -> None:
    """Runbook Step 4: a confirmed order produces exactly one order_confirmed email to the buyer."""
    shop, to, deadline = orders.shop, synthetic_account.email, env_config.thresholds.order_confirmation_seconds
    with step("create an order", blame="order"):
        order = orders.create([{"sku": sku_pool.next(), "qty": 1}])
    with step(f"pay order {order['id']}", blame="payment"):
        payment = orders.pay(order, env_config.synthetic.card_token)
        assert payment["status"] == "succeeded", f"payment {payment['id']} with {env_config.synthetic.card_token} is {payment['status']!r}"
    with step(f"order {order['id']} is confirmed", blame="order",
              diagnose=lambda: diagnosis.why_not_confirmed(shop, order["id"], payment["id"])):
        wait_for(lambda: shop.order(order["id"]), lambda o: o["status"] == "confirmed", timeout=deadline,
                 what=f"order {order['id']} confirmed", describe=describe_order,
                 stop=lambda o: o["status"] in ("payment_failed", "cancelled"))
    with step(f"the order_confirmed email for {order['id']} reaches {to}", blame="notification"):
        messages = wait_for(
            lambda: [m for m in shop.outbox(to) if m.get("order_id") == order["id"]],
            lambda mine: any(m.get("template") == "order_confirmed" for m in mine),
            timeout=env_config.thresholds.notification_delivery_seconds,
            what=f"order_confirmed message for order {order['id']} in the outbox of {to}",
            describe=lambda mine: f"messages for the order: {[m.get('template') for m in mine]}",
        )
    watch = env_config.thresholds.duplicate_watch_seconds
    with step(f"order {order['id']} produces exactly one order_confirmed email (watched for {watch:g} s)", blame="notification"):
        confirmations = [m for m in messages if m.get("template") == "order_confirmed"]
        assert len(confirmations) == 1, f"order {order['id']} produced {len(confirmations)} order_confirmed emails, expected exactly 1"
        hold(lambda: [m for m in shop.outbox(to) if m.get("order_id") == order["id"] and m.get("template") == "order_confirmed"],
             lambda mine: len(mine) <= 1, seconds=watch, what=f"one order_confirmed email for order {order['id']}",
             describe=lambda mine: f"{len(mine)} order_confirmed emails for the order: ids {[m.get('id') for m in mine]}")
