"""Payment: payments of the signed-in user."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..context import ServiceContext
from ..http_util import bearer_claims, error, unauthorized


def routes(ctx: ServiceContext) -> list[Route]:
    store = ctx.shared["store"]

    async def get_payment(request: Request) -> JSONResponse:
        claims = bearer_claims(ctx, request)
        if claims is None:
            return unauthorized()
        payment = store.payments.get(request.path_params["payment_id"])
        if payment is None or payment["user_id"] != claims["sub"]:
            return error(404, "not_found", detail="no such payment")
        return JSONResponse({k: v for k, v in payment.items() if k != "user_id"})

    return [Route("/api/payments/{payment_id}", get_payment, methods=["GET"])]
