"""Order: orders of the signed-in user."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..context import ServiceContext
from ..http_util import bearer_claims, error, unauthorized


def routes(ctx: ServiceContext) -> list[Route]:
    store = ctx.shared["store"]

    async def get_order(request: Request) -> JSONResponse:
        claims = bearer_claims(ctx, request)
        if claims is None:
            return unauthorized()
        order = store.orders.get(request.path_params["order_id"])
        if order is None or order["user_id"] != claims["sub"]:
            return error(404, "not_found", detail="no such order")
        return JSONResponse({k: v for k, v in order.items() if k != "user_id"})

    return [Route("/api/orders/{order_id}", get_order, methods=["GET"])]
