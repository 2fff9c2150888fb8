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


def _no_event(order_id: str, status: Any, reservation: dict[str, Any], held: Any) -> str:
    return (f"order {order_id} is {status!r} and its reservation {reservation.get('id')} {held!r}: either order did not "
            "tell inventory or inventory did not act on it, and the contract shows no event between them")


def why_not_confirmed(shop: ShopApi, order_id: str, payment_id: str | None) -> Diagnosis:
    """The culprit when a paid order is not confirmed: payment, inventory or order; order or inventory (candidates)
    when the order reads paid and its reservation still held (which of them lost the confirmation does not show)."""
    order = shop.order(order_id)
    payment, reservation = _linked(shop, order, payment_id)
    status, held = order.get("status"), (reservation or {}).get("status")
    if payment is not None and payment.get("status") != "succeeded":
        return "payment", f"payment {payment.get('id')} reads {payment.get('status')!r}, not 'succeeded'; order {order_id} is {status!r}"
    if reservation is None:
        return "order", f"order {order_id} ({status!r}) links no reservation"
    if status == "pending_payment":
        return ("order", "payment"), (
            f"payment {payment_id} reads 'succeeded' but order {order_id} is still 'pending_payment': either payment did "
            "not tell order or order did not take it, and the contract shows no event between them")
    if held == "held":
        return ("order", "inventory"), _no_event(order_id, status, reservation, held)
    if held != "confirmed":
        return "inventory", f"reservation {reservation.get('id')} of paid order {order_id} reads {held!r}, neither held nor confirmed"
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
        return ("order", "inventory"), _no_event(order_id, status, reservation or {}, held)
    return "order", f"payment {payment_id} was declined, yet order {order_id} reads {status!r}"


def why_stock_not_back(shop: ShopApi, order_id: str) -> Diagnosis:
    """The stock of a cancelled order is not back: order when it is not cancelled; inventory when its own
    reservation reads released and its own stock disagrees; order or inventory (candidates) when the order reads
    cancelled and the reservation is not released (which of them dropped the release does not show)."""
    order = shop.order(order_id)
    reservation = shop.reservation(order["reservation_id"]) if order.get("reservation_id") else None
    status, held = order.get("status"), (reservation or {}).get("status")
    if status != "cancelled":
        return "order", f"order {order_id} reads {status!r} after its cancel"
    if reservation is None:
        return "order", f"cancelled order {order_id} links no reservation"
    if held != "released":
        return ("order", "inventory"), _no_event(order_id, status, reservation, held)
    return "inventory", (f"reservation {reservation.get('id')} of cancelled order {order_id} reads 'released', "
                         "but inventory's own stock did not take it back")


def why_not_refunded(shop: ShopApi, order_id: str, payment_id: str) -> Diagnosis:
    """The payment of a cancelled order does not read refunded: refund it ourselves and read the payment's own GET.
    Refunded then: order's cancel did not refund it. A refund answered `refunded` that its GET does not show: payment."""
    answer = shop.refund(payment_id)
    after = shop.payment(payment_id)
    if after.get("status") == "refunded":
        return "order", (f"payment {payment_id} refunds when asked directly (its GET reads 'refunded' now): cancelling "
                         f"order {order_id} did not refund it")
    return "payment", (f"POST /api/payments/{payment_id}/refund answered {answer.get('status')!r}, yet the payment's own "
                       f"GET reads {after.get('status')!r}: payment does not keep its refunds")


def why_oversold(shop: ShopApi, order_id: str, sku: str, available: int) -> Diagnosis:
    """An order beyond the stock was accepted: inventory when it held the stock it did not have (its own stock reads
    negative, or its reservation holds more than was available); else order, which accepted it unheld."""
    stock = shop.stock(sku)
    order = shop.order(order_id)
    reservation = shop.reservation(order["reservation_id"]) if order.get("reservation_id") else None
    if stock.get("available", 0) < 0 or (reservation is not None and reservation.get("status") == "held"
                                          and int(reservation.get("qty", 0)) > available):
        return "inventory", (f"inventory held {(reservation or {}).get('qty')} x {sku} with {available} available "
                             f"(reservation {(reservation or {}).get('id')}): its stock reads available={stock.get('available')}")
    return "order", (f"order {order_id} was accepted without the stock held (reservation {(reservation or {}).get('id')} "
                     f"{(reservation or {}).get('status')!r}, available={stock.get('available')}): order ignored the shortage")
