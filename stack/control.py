"""The stack's control API (not part of the PolyShop contract): inspect it and inject faults."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .faults import FAULT_KINDS, FaultError

if TYPE_CHECKING:
    from .runtime import Stack


def control_app(stack: "Stack") -> Starlette:
    async def describe(request: Request) -> JSONResponse:
        return JSONResponse(stack.describe())

    async def events(request: Request) -> JSONResponse:
        """The event bus: events pending per consumer group (0 everywhere once the stack is quiet)."""
        return JSONResponse(stack.bus.describe())

    async def list_faults(request: Request) -> JSONResponse:
        kinds = {kind: text for kind, (text, _) in FAULT_KINDS.items()}
        return JSONResponse({"active": stack.faults.active, "kinds": kinds})

    async def set_fault(request: Request) -> JSONResponse:
        service, kind = request.path_params["service"], request.path_params["kind"]
        if service not in stack.contexts:
            return JSONResponse({"error": f"unknown service {service!r}", "known": list(stack.contexts)}, status_code=404)
        try:
            params: Any = await request.json() if await request.body() else {}
            if not isinstance(params, dict):
                raise FaultError("the body must be a JSON object of fault parameters")
            applied = stack.faults.set(service, kind, params)
        except (FaultError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        await stack.reconcile(service)
        return JSONResponse({"service": service, "kind": kind, "params": applied})

    async def clear_faults(request: Request) -> JSONResponse:
        service = request.path_params.get("service")
        kind = request.path_params.get("kind")
        stack.faults.clear(service, kind)
        for name in [service] if service else list(stack.contexts):
            await stack.reconcile(name)
        return JSONResponse({"active": stack.faults.active})

    return Starlette(
        routes=[
            Route("/", describe),
            Route("/events", events, methods=["GET"]),
            Route("/faults", list_faults, methods=["GET"]),
            Route("/faults", clear_faults, methods=["DELETE"]),
            Route("/faults/{service}", clear_faults, methods=["DELETE"]),
            Route("/faults/{service}/{kind}", set_fault, methods=["PUT", "POST"]),
            Route("/faults/{service}/{kind}", clear_faults, methods=["DELETE"]),
        ]
    )
