"""When an order does not reach the state a flow waits for, which service broke it: the state left behind decides.

The order saga (polyshop-api.md): order created (reservation held) -> payment succeeded or declined ->
order paid -> reservation confirmed -> order confirmed; a declined payment -> order payment_failed and
the reservation released. Reading the order, its payment and its reservation tells which hop is missing.
"""

from __future__ import annotations

from typing import Any

from polycheck.checks.flow import Diagnosis
from polycheck.clients.shop import ShopApi


def _linked(shop: ShopApi, order: dict[str, Any], payment_id: str | None) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    pid = order.get("payment_id") or payment_id
    payment = shop.payment(pid) if pid else None
    reservation = shop.reservation(order["reservation_id"]) if order.get("reservation_id") else None
    return payment, reservation


def why_not_confirmed(shop: ShopApi, order_id: str, payment_id: str | None) -> Diagnosis:
    """The culprit when a paid order is not confirmed: payment, inventory or order."""
    order = shop.order(order_id)
    payment, reservation = _linked(shop, order, payment_id)
    status, held = order.get("status"), (reservation or {}).get("status")
    if payment is not None and payment.get("status") != "succeeded":
        return "payment", f"payment {payment.get('id')} reads {payment.get('status')!r}, not 'succeeded'; order {order_id} is {status!r}"
    if reservation is not None and held != "confirmed" and status in ("paid", "pending_payment", "confirmed"):
        return "inventory", (
            f"reservation {reservation.get('id')} is still {held!r} while order {order_id} is {status!r} "
            f"after payment {payment_id} succeeded: inventory did not confirm it"
        )
    if reservation is None:
        return "order", f"order {order_id} ({status!r}) links no reservation"
    return "order", (
        f"payment {payment_id} succeeded and reservation {reservation.get('id')} is {held!r}, "
        f"yet order {order_id} reads {status!r}: order did not move on"
    )


def why_not_failed(shop: ShopApi, order_id: str, payment_id: str | None) -> Diagnosis:
    """The culprit when a declined order does not end in payment_failed with its stock released."""
    order = shop.order(order_id)
    payment, reservation = _linked(shop, order, payment_id)
    status, held = order.get("status"), (reservation or {}).get("status")
    if payment is not None and payment.get("status") != "declined":
        return "payment", f"payment {payment.get('id')} with a declining card reads {payment.get('status')!r}"
    if status == "payment_failed" and held not in (None, "released"):
        return "inventory", f"order {order_id} is payment_failed but reservation {(reservation or {}).get('id')} is still {held!r}"
    return "order", f"payment {payment_id} was declined, yet order {order_id} reads {status!r}"


def why_stock_off(shop: ShopApi, order_id: str) -> Diagnosis:
    """Stock did not move as the order's state says it should: inventory owns stock, unless the order never told it."""
    order = shop.order(order_id)
    reservation = shop.reservation(order["reservation_id"]) if order.get("reservation_id") else None
    return "inventory", (
        f"order {order_id} is {order.get('status')!r} and its reservation {(reservation or {}).get('id')} "
        f"{(reservation or {}).get('status')!r}, but the stock does not match"
    )
