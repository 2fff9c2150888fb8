"""The probe and metrics endpoints every PolyShop service serves (polyshop-api.md, Every service)."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .context import ServiceContext

EXPOSITION_TYPE = "text/plain; version=0.0.4; charset=utf-8"


CHUNK = 64 * 1024


def _huge(ctx: ServiceContext, size: int, declared: bool) -> Response:
    """A valid /health body padded to `size` bytes, sent in chunks (the fault huge_body)."""
    head = json.dumps({"status": "ok", "service": ctx.name, "version": ctx.reported_version(), "checks": {}})[:-1].encode()
    head += b', "padding": "'
    tail = b'"}'
    padding = max(0, size - len(head) - len(tail))

    async def body():  # type: ignore[no-untyped-def]
        yield head
        left = padding
        while left > 0:
            step = min(CHUNK, left)
            yield b"x" * step
            left -= step
        yield tail

    headers = {"content-length": str(len(head) + padding + len(tail))} if declared else None
    return StreamingResponse(body(), media_type="application/json", headers=headers)


def health_routes(ctx: ServiceContext) -> list[Route]:
    async def health(request: Request) -> Response:
        huge = ctx.faults.get(ctx.name, "huge_body")
        if huge:
            return _huge(ctx, int(huge["megabytes"] * 1024 * 1024), bool(huge["declared"]))
        checks = {dependency: "ok" for dependency in ctx.spec.dependencies}
        status, code = "ok", 200
        fault = ctx.faults.get(ctx.name, "health")
        if fault:
            status = fault["status"]
            checks[fault["dependency"]] = "down" if status == "down" else "degraded"
            code = 503 if status == "down" else 200
        body = {"status": status, "service": ctx.name, "version": ctx.reported_version(), "checks": checks}
        return JSONResponse(body, status_code=code)

    async def live(request: Request) -> JSONResponse:
        return JSONResponse({"status": "alive", "service": ctx.name})

    async def ready(request: Request) -> JSONResponse:
        if ctx.faults.is_set(ctx.name, "not_ready"):
            return JSONResponse({"status": "not_ready", "service": ctx.name}, status_code=503)
        return JSONResponse({"status": "ready", "service": ctx.name})

    async def metrics(request: Request) -> Response:
        drop = ctx.faults.get(ctx.name, "drop_metric")
        body = ctx.metrics.exposition(drop["family"] if drop else None)
        wrong = ctx.faults.get(ctx.name, "wrong_service_label")
        if wrong is not None:
            label = wrong["label"] or f"{ctx.name}-service"
            body = body.replace(f'service="{ctx.name}"'.encode(), f'service="{label}"'.encode())
        return Response(body, media_type=EXPOSITION_TYPE)

    return [
        Route("/health", health),
        Route("/health/live", live),
        Route("/health/ready", ready),
        Route("/metrics", metrics),
    ]
