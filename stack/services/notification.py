"""Notification: the outbox of synthetic addresses."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..context import ServiceContext
from ..http_util import error, is_synthetic


def routes(ctx: ServiceContext) -> list[Route]:
    store = ctx.shared["store"]

    async def outbox(request: Request) -> JSONResponse:
        to = request.query_params.get("to", "").strip().lower()
        if not to or "@" not in to:
            return error(422, "invalid_query", detail="?to=<email> is required")
        if not is_synthetic(to):
            return error(403, "forbidden", detail="only synthetic addresses may be read")
        return JSONResponse({"messages": [m for m in store.outbox if m["to"] == to]})

    return [Route("/api/notifications/outbox", outbox, methods=["GET"])]
