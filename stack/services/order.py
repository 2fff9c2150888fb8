"""Order: orders of the signed-in user, and the order side of the checkout saga.

Creating an order prices it (product service) and holds its stock (inventory service), over HTTP.
After payment the order moves by events: `payment.succeeded` -> paid (publishes `order.paid`),
`reservation.confirmed` -> confirmed (publishes `order.confirmed`), `payment.declined` -> payment_failed
(publishes `order.payment_failed`). Cancelling releases the stock and refunds a captured payment.
Faults: `stuck_paid` (the confirmation is lost), `ignore_idempotency` (a repeated key makes a new order),
`wrong_total` (the total is off by `extra_cents`), `cancel_keeps_payment` (a cancel never refunds),
`leak_orders` (any user's order is readable), `no_idempotency_key_check` (no key needed),
`oversell` (inventory's 409 for a shortage is ignored: the order is accepted, nothing held),
`paid_unpublished` (a paid order never tells inventory: it stays paid, its reservation held),
`cancel_keeps_reservation` (a cancel never releases the reservation), `lose_after_hold` (the stock is held,
then the create answers 503 and records nothing: an orphan hold, as a crash mid-create leaves).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..context import ServiceContext
from ..domain import Line, Order, OrderStatus
from ..events import Event
from ..http_util import (
    bearer_claims,
    body_fingerprint,
    error,
    idempotency_key,
    is_synthetic,
    is_synthetic_request,
    json_body,
    missing_idempotency_key,
    owned_by_caller,
    unauthorized,
)
from ..middleware import TraceContext, trace_of
from ..peers import PeerClient, PeerError
from .inventory import parse_lines
from .parts import ServiceParts, bus_of, store_of


def build(ctx: ServiceContext) -> ServiceParts:
    data = store_of(ctx).orders
    bus = bus_of(ctx)
    peers = PeerClient(ctx)

    def publish(order: Order, type_: str, trace: TraceContext, **extra: Any) -> None:
        body = {"order_id": order.id, "reservation_id": order.reservation_id, "payment_id": order.payment_id, **extra}
        bus.publish("orders", type_, order.id, body, trace)

    def move(order: Order, status: OrderStatus) -> None:
        order.status, order.updated_at = status, time.time()

    def faulty(kind: str) -> bool:
        return ctx.faults.is_set(ctx.name, kind)

    def owned_order(request: Request, leak: bool = False) -> Order | JSONResponse:
        """The signed-in user's order named in the path, or the 401/404 answer to give instead."""
        return owned_by_caller(ctx, request, data.orders, "order_id", "order", leak=leak)

    async def place(
        claims: dict[str, Any], lines: list[Line], trace: TraceContext, synthetic: bool
    ) -> Order | JSONResponse:
        """Price the lines and hold their stock; the new order, or the error to answer."""
        skus = [("sku", line.sku) for line in lines]
        priced = await peers.call("product", "GET", "/internal/products", trace, params=skus, synthetic=synthetic)
        catalogue = priced.json()
        if catalogue["missing"]:
            return error(422, "unknown_sku", skus=catalogue["missing"])
        products = {p["sku"]: p for p in catalogue["items"]}
        currencies = {p["currency"] for p in products.values()}
        if len(currencies) != 1:
            return error(422, "mixed_currencies", currencies=sorted(currencies))
        order_id = f"ord_{secrets.token_hex(8)}"
        held = await peers.call(
            "inventory",
            "POST",
            "/internal/reservations",
            trace,
            json={"order_id": order_id, "items": [line.as_json() for line in lines]},
            synthetic=synthetic,
        )
        oversold = held.status_code == 409 and faulty("oversell")  # the bug: the shortage is ignored, nothing held
        if held.status_code not in (200, 201) and not oversold:
            return JSONResponse(held.json(), status_code=held.status_code)
        unit_prices = {sku: p["price_cents"] for sku, p in products.items()}
        wrong_total = ctx.faults.get(ctx.name, "wrong_total")
        extra_cents = wrong_total["extra_cents"] if wrong_total else 0
        return Order(
            id=order_id,
            user_id=claims["sub"],
            email=str(claims.get("email", "")),
            lines=lines,
            unit_prices=unit_prices,
            total_cents=sum(unit_prices[line.sku] * line.qty for line in lines) + extra_cents,
            currency=currencies.pop(),
            reservation_id=None if oversold else held.json()["id"],
            synthetic=synthetic,
        )

    async def create_order(request: Request) -> JSONResponse:
        claims = bearer_claims(ctx, request)
        if claims is None:
            return unauthorized()
        key = idempotency_key(request)
        if key is None and faulty("no_idempotency_key_check"):
            key = f"unkeyed-{secrets.token_hex(8)}"  # the bug: every keyless request is a new order
        if key is None:
            return missing_idempotency_key()
        body = await json_body(request)
        lines = parse_lines(body.get("items")) if body is not None else None
        if body is None or lines is None:
            return error(422, "invalid_body", detail='expected {"items": [{"sku": str, "qty": 1..1000}]}')
        scope, fingerprint = (claims["sub"], key), body_fingerprint(body)
        async with data.key_locks[scope]:
            seen = data.idempotency.get(scope)
            if seen is not None and not ctx.faults.is_set(ctx.name, "ignore_idempotency"):
                if seen[1] != fingerprint:
                    return error(422, "idempotency_key_reused", detail="this key was used with a different body")
                return JSONResponse(data.orders[seen[0]].as_json(), status_code=200)
            trace = trace_of(request.scope)
            synthetic = is_synthetic(str(claims.get("email", ""))) or is_synthetic_request(request)
            try:
                placed = await place(claims, lines, trace, synthetic)
            except PeerError as exc:
                return exc.response()
            if isinstance(placed, JSONResponse):
                return placed
            if faulty("lose_after_hold"):
                return error(503, "crashed", detail="the order service died after holding the stock")
            data.orders[placed.id] = placed
            data.idempotency[scope] = (placed.id, fingerprint)
            publish(placed, "order.created", trace, total_cents=placed.total_cents, synthetic=synthetic)
            return JSONResponse(placed.as_json(), status_code=201)

    async def get_order(request: Request) -> JSONResponse:
        order = owned_order(request, leak=faulty("leak_orders"))
        if isinstance(order, JSONResponse):
            return order
        return JSONResponse(order.as_json())

    async def cancel_order(request: Request) -> JSONResponse:
        order = owned_order(request)
        if isinstance(order, JSONResponse):
            return order
        if order.status == "cancelled":
            return JSONResponse(order.as_json())
        trace = trace_of(request.scope)
        try:
            if order.reservation_id is not None and not faulty("cancel_keeps_reservation"):  # the bug: never released
                await peers.call(
                    "inventory",
                    "POST",
                    f"/internal/reservations/{order.reservation_id}/release",
                    trace,
                    json={"reason": "cancelled"},
                    synthetic=order.synthetic,
                )
            if not faulty("cancel_keeps_payment"):  # the bug: the captured payment is kept
                await refund_captured(order, trace)
        except PeerError as exc:
            return exc.response()
        if order.status != "cancelled":
            move(order, "cancelled")
            publish(order, "order.cancelled", trace)
        return JSONResponse(order.as_json())

    async def refund_captured(order: Order, trace: TraceContext) -> None:
        """Ask the payment service to refund whatever it captured for the order."""
        answer = await peers.call(
            "payment", "POST", f"/internal/orders/{order.id}/refund", trace, synthetic=order.synthetic
        )
        payment = answer.json().get("payment")
        if payment and order.payment_id is None:
            order.payment_id = payment["id"]

    async def internal_order(request: Request) -> JSONResponse:
        """Cluster-internal: the order with its owner, for the payment service."""
        order = data.orders.get(request.path_params["order_id"])
        if order is None:
            return error(404, "not_found", detail="no such order")
        return JSONResponse(order.internal_json())

    async def on_payment_event(event: Event) -> None:
        order = data.orders.get(str(event.data.get("order_id")))
        if order is None or event.type not in ("payment.succeeded", "payment.declined"):
            return
        payment_id = str(event.data["payment_id"])
        if order.status != "pending_payment":
            if order.payment_id is None:
                order.payment_id = payment_id
            keeps = order.status == "cancelled" and faulty("cancel_keeps_payment")
            if event.type == "payment.succeeded" and order.status in ("cancelled", "payment_failed") and not keeps:
                await refund_captured(order, event.trace())  # captured after the order gave up: compensate
            return
        order.payment_id = payment_id
        if event.type == "payment.succeeded":
            move(order, "paid")
            if not faulty("paid_unpublished"):  # the bug: inventory never hears of the payment
                publish(order, "order.paid", event.trace())
        else:
            move(order, "payment_failed")
            publish(order, "order.payment_failed", event.trace())

    async def on_inventory_event(event: Event) -> None:
        order = data.orders.get(str(event.data.get("order_id")))
        if order is None or event.type != "reservation.confirmed" or order.status != "paid":
            return
        if ctx.faults.is_set(ctx.name, "stuck_paid"):
            return  # the bug: the confirmation is consumed and lost
        move(order, "confirmed")
        publish(
            order,
            "order.confirmed",
            event.trace(),
            user_id=order.user_id,
            email=order.email,
            total_cents=order.total_cents,
            currency=order.currency,
            synthetic=order.synthetic,
        )

    return ServiceParts(
        routes=[
            Route("/api/orders", create_order, methods=["POST"]),
            Route("/api/orders/{order_id}", get_order, methods=["GET"]),
            Route("/api/orders/{order_id}/cancel", cancel_order, methods=["POST"]),
            Route("/internal/orders/{order_id}", internal_order, methods=["GET"]),
        ],
        subscriptions={"payments": on_payment_event, "inventory": on_inventory_event},
    )
