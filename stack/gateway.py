"""The gateway: routes /api/... to the services and serves the storefront (stack.storefront).

Faults: `misroute` (requests under `prefix` go to service `to` instead of their own), `drop_header` (requests
under `prefix` are passed on without the request header `header`).
"""

from __future__ import annotations

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .catalog import GATEWAY_ROUTES
from .context import ServiceContext
from .http_util import PEER_LIMITS
from .middleware import trace_of
from .storefront import storefront_routes

FORWARDED_REQUEST_HEADERS = ("authorization", "content-type", "accept", "idempotency-key", "x-synthetic", "x-request-id")
DROPPED_RESPONSE_HEADERS = {"content-length", "connection", "transfer-encoding", "x-request-id", "traceparent", "date", "server"}
UPSTREAM_TIMEOUT = httpx.Timeout(5.0, connect=1.0)


def upstream_for(path: str) -> str | None:
    for prefix, service in GATEWAY_ROUTES:
        if path.startswith(prefix):
            return service
    return None


def gateway_routes(ctx: ServiceContext) -> list[Route]:
    client = httpx.AsyncClient(timeout=UPSTREAM_TIMEOUT, limits=PEER_LIMITS)
    ctx.shared.setdefault("closers", []).append(client.aclose)

    async def proxy(request: Request) -> Response:
        service = upstream_for(request.url.path)
        misroute = ctx.faults.get(ctx.name, "misroute")
        if misroute and request.url.path.startswith(misroute["prefix"]):
            service = misroute["to"]  # the bug: the wrong service answers
        if service is None:
            return JSONResponse({"error": "no_route", "path": request.url.path}, status_code=404)
        trace = trace_of(request.scope)
        dropped = ctx.faults.get(ctx.name, "drop_header")
        headers = {k: v for k, v in request.headers.items() if k in FORWARDED_REQUEST_HEADERS
                   and not (dropped and k == dropped["header"] and request.url.path.startswith(dropped["prefix"]))}
        headers["traceparent"] = trace.traceparent
        headers["x-request-id"] = trace.request_id
        url = ctx.peers[service] + request.url.path
        try:
            upstream = await client.request(
                request.method, url, params=request.query_params.multi_items(), headers=headers, content=await request.body()
            )
        except httpx.TimeoutException:
            return JSONResponse({"error": "upstream_timeout", "upstream": service}, status_code=504)
        except httpx.TransportError as exc:
            return JSONResponse({"error": "bad_gateway", "upstream": service, "detail": _described(exc)}, status_code=502)
        kept = {k: v for k, v in upstream.headers.items() if k.lower() not in DROPPED_RESPONSE_HEADERS}
        return Response(upstream.content, status_code=upstream.status_code, headers=kept)

    return [
        Route("/api/{path:path}", proxy, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        *storefront_routes(ctx),
    ]


def _described(exc: BaseException) -> str:
    """The transport error with its cause: anyio's BrokenResourceError (a reset connection) has no text of its own."""
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    while cause is not None and not str(cause):
        cause = cause.__cause__ or cause.__context__
    return f"{text}: {type(cause).__name__}: {cause}" if cause is not None and str(cause) != text else text
