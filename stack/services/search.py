"""Search: a full-text index of the catalogue, fed asynchronously from the `products` topic.

The consumer buffers product documents; the indexer refreshes them into the searchable index every
INDEX_REFRESH_SECONDS. `lag_seconds` is how far the index trails the catalogue: the age of the oldest
catalogue change not yet searchable, or of the last refresh if everything is.
Faults: `empty_results` (no query finds anything), `index_stalled` (no consuming, no refresh),
`misses_new` (the product whose name a query spells out exactly is left out of the results), `padded_total`
(`total` is `extra` more than the hits, also on a page that holds them all).
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..cache import TtlCache
from ..context import ServiceContext
from ..domain import SearchData, SearchDocument, iso_utc
from ..events import Event
from ..http_util import error
from .parts import ServiceParts, bus_of, store_of

INDEX_REFRESH_SECONDS = 0.25
RESULT_CACHE_TTL_SECONDS = 5.0
MAX_QUERY_LENGTH = 200
WORD = re.compile(r"[a-z0-9]+")


def terms(text: str) -> list[str]:
    return WORD.findall(text.lower())


def score(document: SearchDocument, query: list[str]) -> float:
    """Per query term: 1 for a whole word of the name, 0.5 for a word prefix, 2 for the SKU; averaged."""
    total = 0.0
    for term in query:
        if term in document.terms:
            total += 1.0
        elif any(word.startswith(term) for word in document.terms):
            total += 0.5
        if term == document.sku.lower() or term == document.sku.lower().replace("-", ""):
            total += 2.0
    return round(total / len(query), 4)


def search(data: SearchData, query: list[str], limit: int, miss_named: bool = False) -> dict[str, Any]:
    """The best `limit` hits; `miss_named` (the misses_new fault) leaves out documents named exactly as the query."""
    named = frozenset(query) if miss_named else None
    hits = [(score(doc, query), doc) for doc in data.documents.values() if frozenset(terms(doc.name)) != named]
    ranked = sorted(((s, d) for s, d in hits if s > 0), key=lambda hit: (-hit[0], hit[1].name))
    items = [{"id": d.id, "sku": d.sku, "name": d.name, "score": s} for s, d in ranked[:limit]]
    return {"items": items, "total": len(ranked)}


def build(ctx: ServiceContext) -> ServiceParts:
    data = store_of(ctx).search
    bus = bus_of(ctx)
    cache = TtlCache(ctx)

    def stalled() -> bool:
        return ctx.faults.is_set(ctx.name, "index_stalled")

    def lag_seconds(now: float) -> float:
        subscription = bus.subscription(ctx.name, "products")
        oldest = [data.last_indexed_at or now, *data.buffered_since.values()]
        pending = subscription.oldest_pending_published_at() if subscription else None
        if pending is not None:
            oldest.append(pending)
        return round(max(0.0, now - min(oldest)), 3)

    async def query(request: Request) -> JSONResponse:
        q = request.query_params.get("q", "").strip()
        raw_limit = request.query_params.get("limit", "10")
        limit = int(raw_limit) if raw_limit.isdigit() else 0
        if not q or len(q) > MAX_QUERY_LENGTH or not 1 <= limit <= 100:
            return error(422, "invalid_query", detail=f"q is 1..{MAX_QUERY_LENGTH} characters, limit 1..100")
        query_terms = terms(q)
        if not query_terms or ctx.faults.is_set(ctx.name, "empty_results"):
            return JSONResponse({"items": [], "total": 0})
        miss_named = ctx.faults.is_set(ctx.name, "misses_new")
        key = f"search:{data.generation}:{limit}:{miss_named}:{' '.join(query_terms)}"
        found = cache.get_or_load(key, RESULT_CACHE_TTL_SECONDS, lambda: search(data, query_terms, limit, miss_named))
        padded = ctx.faults.get(ctx.name, "padded_total")
        if padded is not None:  # the bug: total counts hits the results never hold
            found = {**found, "total": found["total"] + padded["extra"]}
        return JSONResponse(found)

    async def status(request: Request) -> JSONResponse:
        now = time.time()
        last = data.last_indexed_at
        return JSONResponse(
            {
                "documents": len(data.documents),
                "last_indexed_at": iso_utc(last) if last is not None else None,
                "lag_seconds": lag_seconds(now),
            }
        )

    async def on_product_event(event: Event) -> None:
        if event.type == "product.upserted":
            product = event.data
            name = str(product["name"])
            data.buffer[product["id"]] = SearchDocument(
                product["id"], product["sku"], name, frozenset(terms(name) + terms(product["sku"]))
            )
            data.buffered_since.setdefault(product["id"], event.published_at)

    async def indexer() -> None:
        """Refresh buffered documents into the index, as a search engine's refresh interval does."""
        while True:
            if not stalled():
                if data.buffer:
                    data.documents.update(data.buffer)
                    data.buffer.clear()
                    data.buffered_since.clear()
                    data.generation += 1
                data.last_indexed_at = time.time()
            await asyncio.sleep(INDEX_REFRESH_SECONDS)

    return ServiceParts(
        routes=[
            Route("/api/search", query, methods=["GET"]),
            Route("/api/search/status", status, methods=["GET"]),
        ],
        subscriptions={"products": on_product_event},
        paused=stalled,
        workers=[indexer],
    )

