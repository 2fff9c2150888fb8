"""Product: the catalogue. Publishes every product on the `products` topic (the search index feeds on it).

Faults: `bad_pagination` (`limit` is ignored: a page holds every product from `offset` on), `short_total` (a list's
`total` is `missing` less than the catalogue holds: below the items of a page that reaches the catalogue's end).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..cache import TtlCache
from ..context import ServiceContext
from ..domain import Product
from ..http_util import error
from ..middleware import TraceContext, trace_of
from .parts import ServiceParts, bus_of, store_of

CACHE_TTL_SECONDS = 30.0
MAX_SKUS_PER_LOOKUP = 100


def _bounded_int(raw: str | None, default: int, low: int, high: int) -> int | None:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if low <= value <= high else None


def build(ctx: ServiceContext) -> ServiceParts:
    catalogue = store_of(ctx).catalogue
    bus = bus_of(ctx)
    cache = TtlCache(ctx)

    def publish_upsert(product: Product, trace: TraceContext) -> None:
        bus.publish("products", "product.upserted", product.id, product.as_json(), trace)

    async def list_products(request: Request) -> JSONResponse:
        limit = _bounded_int(request.query_params.get("limit"), 20, 1, 100)
        offset = _bounded_int(request.query_params.get("offset"), 0, 0, 10**9)
        if limit is None or offset is None:
            return error(422, "invalid_query", detail="limit must be 1..100 and offset >= 0")

        end: int | None = offset + limit
        if ctx.faults.is_set(ctx.name, "bad_pagination"):
            end = None  # the bug: the limit is ignored

        def load() -> dict[str, Any]:
            products = [] if ctx.faults.is_set(ctx.name, "empty_catalogue") else list(catalogue.products.values())
            return {"items": [p.as_json() for p in products[offset:end]], "total": len(products)}

        empty = ":empty" if ctx.faults.is_set(ctx.name, "empty_catalogue") else ""
        page = cache.get_or_load(f"products:{offset}:{end}{empty}", CACHE_TTL_SECONDS, load)
        short = ctx.faults.get(ctx.name, "short_total")
        if short is not None:  # the bug: the count misses products the list shows
            page = {**page, "total": max(page["total"] - short["missing"], 0)}
        return JSONResponse(page)

    async def get_product(request: Request) -> JSONResponse:
        product_id = request.path_params["product_id"]

        def load() -> dict[str, Any] | None:
            product = catalogue.products.get(product_id)
            return product.as_json() if product else None

        body = cache.get_or_load(f"product:{product_id}", CACHE_TTL_SECONDS, load)
        if body is None:
            return error(404, "not_found", detail="no such product")
        return JSONResponse(body)

    async def lookup_skus(request: Request) -> JSONResponse:
        """Cluster-internal: the products of the given `sku` query parameters, and those unknown."""
        skus = request.query_params.getlist("sku")
        if not skus or len(skus) > MAX_SKUS_PER_LOOKUP:
            return error(422, "invalid_query", detail=f"give 1..{MAX_SKUS_PER_LOOKUP} sku parameters")
        found = {sku: catalogue.by_sku(sku) for sku in skus}
        return JSONResponse(
            {
                "items": [p.as_json() for p in found.values() if p is not None],
                "missing": [sku for sku, p in found.items() if p is None],
            }
        )

    async def republish(request: Request) -> JSONResponse:
        """Cluster-internal: publish the whole catalogue again (a search reindex)."""
        trace = trace_of(request.scope)
        for product in catalogue.products.values():
            publish_upsert(product, trace)
        return JSONResponse({"published": len(catalogue.products)}, status_code=202)

    async def publish_catalogue() -> None:
        """At start-up, feed the catalogue to its consumers (the search indexer)."""
        trace = TraceContext.continue_from(None, None)
        for product in catalogue.products.values():
            publish_upsert(product, trace)

    return ServiceParts(
        routes=[
            Route("/api/products", list_products, methods=["GET"]),
            Route("/api/products/{product_id}", get_product, methods=["GET"]),
            Route("/internal/products", lookup_skus, methods=["GET"]),
            Route("/internal/catalogue/publish", republish, methods=["POST"]),
        ],
        workers=[publish_catalogue],
    )
