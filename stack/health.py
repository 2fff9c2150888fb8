"""The probe and metrics endpoints every PolyShop service serves (polyshop-api.md, Every service)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .context import ServiceContext

EXPOSITION_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def health_routes(ctx: ServiceContext) -> list[Route]:
    async def health(request: Request) -> JSONResponse:
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
