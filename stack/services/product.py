"""Product: the catalogue."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..context import ServiceContext
from ..http_util import error


def _bounded_int(raw: str | None, default: int, low: int, high: int) -> int | None:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if low <= value <= high else None


def routes(ctx: ServiceContext) -> list[Route]:
    store = ctx.shared["store"]

    async def list_products(request: Request) -> JSONResponse:
        limit = _bounded_int(request.query_params.get("limit"), 20, 1, 100)
        offset = _bounded_int(request.query_params.get("offset"), 0, 0, 10**9)
        if limit is None or offset is None:
            return error(422, "invalid_query", detail="limit must be 1..100 and offset >= 0")
        products = list(store.products.values())
        items = [p.as_json() for p in products[offset : offset + limit]]
        return JSONResponse({"items": items, "total": len(products)})

    async def get_product(request: Request) -> JSONResponse:
        product = store.products.get(request.path_params["product_id"])
        if product is None:
            return error(404, "not_found", detail="no such product")
        return JSONResponse(product.as_json())

    return [
        Route("/api/products", list_products, methods=["GET"]),
        Route("/api/products/{product_id}", get_product, methods=["GET"]),
    ]
