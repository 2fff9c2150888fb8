"""Inventory: stock per SKU and reservations."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..context import ServiceContext
from ..http_util import error


def routes(ctx: ServiceContext) -> list[Route]:
    store = ctx.shared["store"]

    async def get_stock(request: Request) -> JSONResponse:
        stock = store.stock.get(request.path_params["sku"])
        if stock is None:
            return error(404, "not_found", detail="unknown sku")
        return JSONResponse(stock.as_json())

    async def get_reservation(request: Request) -> JSONResponse:
        reservation = store.reservations.get(request.path_params["reservation_id"])
        if reservation is None:
            return error(404, "not_found", detail="no such reservation")
        return JSONResponse(reservation)

    return [
        Route("/api/inventory/reservations/{reservation_id}", get_reservation, methods=["GET"]),
        Route("/api/inventory/{sku}", get_stock, methods=["GET"]),
    ]
