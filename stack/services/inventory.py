"""Inventory: stock per SKU and the reservations that hold it for orders.

Holding and releasing are cluster-internal calls from the order service; confirming follows the `order.paid` event, and a failed payment's
`order.payment_failed` releases the stock.
Faults: `no_confirm` (reservations are never confirmed), `leak_on_cancel` (a cancel does not release),
`no_stock_move` (a confirmation gives the held stock back to available: stock never moves),
`hold_beyond_stock` (a hold beyond the stock succeeds: available goes negative).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..context import ServiceContext
from ..domain import InventoryData, Line, Reservation
from ..events import Event
from ..http_util import error, json_body, positive_int
from ..middleware import TraceContext, trace_of
from .parts import ServiceParts, bus_of, store_of

MAX_QTY_PER_LINE = 1000
RELEASE_REASONS = ("cancelled", "payment_failed", "expired")


class StockShort(Exception):
    """Not enough stock available for a line."""

    def __init__(self, sku: str, requested: int, available: int) -> None:
        super().__init__(sku)
        self.sku, self.requested, self.available = sku, requested, available


def parse_lines(raw: Any) -> list[Line] | None:
    """Order lines `[{"sku", "qty"}]`, quantities of a repeated SKU added up; None when malformed."""
    if not isinstance(raw, list) or not raw or len(raw) > 50:
        return None
    totals: dict[str, int] = {}
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("sku"), str) or not item["sku"].strip():
            return None
        qty = positive_int(item.get("qty"), MAX_QTY_PER_LINE)
        if qty is None:
            return None
        sku = item["sku"].strip()
        totals[sku] = totals.get(sku, 0) + qty
    return [Line(sku, qty) for sku, qty in totals.items()]


def hold(data: InventoryData, order_id: str, lines: list[Line], backorder: bool = False) -> Reservation:
    """Move stock from available to reserved for every line, or none of them (StockShort; unless `backorder`)."""
    for line in lines:
        stock = data.stock[line.sku]
        if stock.available < line.qty and not backorder:
            raise StockShort(line.sku, line.qty, stock.available)
    for line in lines:
        data.stock[line.sku].available -= line.qty
        data.stock[line.sku].reserved += line.qty
    reservation = Reservation(id=f"res_{secrets.token_hex(8)}", order_id=order_id, lines=lines)
    data.reservations[reservation.id] = reservation
    data.by_order[order_id] = reservation.id
    return reservation


def confirm(data: InventoryData, reservation: Reservation, move_stock: bool = True) -> bool:
    """Held stock leaves the warehouse (not `move_stock`: goes back to available); True when this call confirmed it."""
    if reservation.status != "held":
        return False
    for line in reservation.lines:
        data.stock[line.sku].reserved -= line.qty
        if not move_stock:
            data.stock[line.sku].available += line.qty
    reservation.status, reservation.updated_at = "confirmed", time.time()
    return True


def release(data: InventoryData, reservation: Reservation, restock: bool = True) -> bool:
    """Stock goes back to available (held: out of reserved; confirmed: restocked unless it never left);
    True when the reservation was released by this call."""
    if reservation.status == "released":
        return False
    for line in reservation.lines:
        stock = data.stock[line.sku]
        if reservation.status == "held":
            stock.reserved -= line.qty
        if reservation.status == "held" or restock:
            stock.available += line.qty
    reservation.status, reservation.updated_at = "released", time.time()
    return True


def build(ctx: ServiceContext) -> ServiceParts:
    data = store_of(ctx).inventory
    bus = bus_of(ctx)
    unmoved: set[str] = set()  # reservations confirmed under `no_stock_move`: their stock never left

    def give_back(reservation: Reservation) -> bool:
        """Release a reservation, restocking only what actually left."""
        return release(data, reservation, restock=reservation.id not in unmoved)

    async def get_stock(request: Request) -> JSONResponse:
        stock = data.stock.get(request.path_params["sku"])
        if stock is None:
            return error(404, "not_found", detail="unknown sku")
        return JSONResponse(stock.as_json())

    async def get_reservation(request: Request) -> JSONResponse:
        reservation = data.reservations.get(request.path_params["reservation_id"])
        if reservation is None:
            return error(404, "not_found", detail="no such reservation")
        return JSONResponse(reservation.as_json())

    async def create_reservation(request: Request) -> JSONResponse:
        """Cluster-internal: hold stock for an order; one reservation per order (a retry gets the same)."""
        body = await json_body(request)
        lines = parse_lines(body.get("items")) if body else None
        order_id = body.get("order_id") if body else None
        if lines is None or not isinstance(order_id, str) or not order_id:
            return error(422, "invalid_body", detail='expected {"order_id": str, "items": [{"sku", "qty"}]}')
        existing = data.by_order.get(order_id)
        if existing is not None:
            return JSONResponse(data.reservations[existing].as_json())
        unknown = [line.sku for line in lines if line.sku not in data.stock]
        if unknown:
            return error(422, "unknown_sku", skus=unknown)
        try:
            reservation = hold(data, order_id, lines, backorder=ctx.faults.is_set(ctx.name, "hold_beyond_stock"))
        except StockShort as short:
            return error(
                409, "insufficient_stock", sku=short.sku, requested=short.requested, available=short.available
            )
        return JSONResponse(reservation.as_json(), status_code=201)

    async def release_reservation(request: Request) -> JSONResponse:
        """Cluster-internal: give the reservation's stock back. Idempotent."""
        reservation = data.reservations.get(request.path_params["reservation_id"])
        if reservation is None:
            return error(404, "not_found", detail="no such reservation")
        body = await json_body(request) or {}
        reason = body.get("reason", "cancelled")
        if reason not in RELEASE_REASONS:
            return error(422, "invalid_body", detail=f"reason must be one of {', '.join(RELEASE_REASONS)}")
        if reason == "cancelled" and ctx.faults.is_set(ctx.name, "leak_on_cancel"):
            return JSONResponse(reservation.as_json())  # the bug: acknowledged, never applied
        if give_back(reservation):
            publish_released(reservation, reason, trace_of(request.scope))
        return JSONResponse(reservation.as_json())

    def publish_released(reservation: Reservation, reason: str, trace: TraceContext) -> None:
        body = {"reservation_id": reservation.id, "order_id": reservation.order_id, "reason": reason}
        bus.publish("inventory", "reservation.released", reservation.order_id, body, trace)

    async def on_order_event(event: Event) -> None:
        reservation = data.reservations.get(str(event.data.get("reservation_id")))
        if reservation is None:
            return
        if event.type == "order.paid":
            if ctx.faults.is_set(ctx.name, "no_confirm"):
                return
            move_stock = not ctx.faults.is_set(ctx.name, "no_stock_move")
            if confirm(data, reservation, move_stock) and not move_stock:
                unmoved.add(reservation.id)  # the bug: confirmed, and the stock went back on the shelf
            if reservation.status == "confirmed":
                body = {"reservation_id": reservation.id, "order_id": reservation.order_id}
                bus.publish("inventory", "reservation.confirmed", reservation.order_id, body, event.trace())
        elif event.type == "order.payment_failed":
            if give_back(reservation):
                publish_released(reservation, "payment_failed", event.trace())

    return ServiceParts(
        routes=[
            Route("/api/inventory/reservations/{reservation_id}", get_reservation, methods=["GET"]),
            Route("/api/inventory/{sku}", get_stock, methods=["GET"]),
            Route("/internal/reservations", create_reservation, methods=["POST"]),
            Route("/internal/reservations/{reservation_id}/release", release_reservation, methods=["POST"]),
        ],
        subscriptions={"orders": on_order_event},
    )
