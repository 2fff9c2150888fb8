"""The stack's control API (not part of the PolyShop contract): inspect it and inject faults."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from kubesim import FaultError as KubeFaultError

from .faults import FAULT_KINDS, FaultError

if TYPE_CHECKING:
    from .runtime import Stack

ALL_SERVICES = "all"  # PUT /faults/all/<kind>: the fault on every service at once


def control_app(stack: Stack) -> Starlette:
    async def describe(request: Request) -> JSONResponse:
        return JSONResponse(stack.describe())

    async def events(request: Request) -> JSONResponse:
        """The event bus: events pending per consumer group (0 everywhere once the stack is quiet)."""
        return JSONResponse(stack.bus.describe())

    async def list_faults(request: Request) -> JSONResponse:
        kinds = {kind: text for kind, (text, _) in FAULT_KINDS.items()}
        targets = [*stack.contexts, ALL_SERVICES]
        return JSONResponse({"active": stack.faults.active, "kinds": kinds, "services": targets})

    async def set_fault(request: Request) -> JSONResponse:
        service, kind = request.path_params["service"], request.path_params["kind"]
        if service not in stack.contexts and service != ALL_SERVICES:
            known = [*stack.contexts, ALL_SERVICES]
            return JSONResponse({"error": f"unknown service {service!r}", "known": known}, status_code=404)
        services = list(stack.contexts) if service == ALL_SERVICES else [service]
        try:
            params: Any = await request.json() if await request.body() else {}
            if not isinstance(params, dict):
                raise FaultError("the body must be a JSON object of fault parameters")
            applied = stack.faults.set_many(services, kind, params)
        except (FaultError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        for name in services:
            await stack.reconcile(name)
        return JSONResponse({"service": service, "services": services, "kind": kind, "params": applied})

    async def clear_faults(request: Request) -> JSONResponse:
        service = request.path_params.get("service")
        kind = request.path_params.get("kind")
        if service == ALL_SERVICES:
            service = None
        stack.faults.clear(service, kind)
        for name in [service] if service else list(stack.contexts):
            await stack.reconcile(name)
        return JSONResponse({"active": stack.faults.active})

    async def expired_token(request: Request) -> JSONResponse:
        """A genuinely signed token of a user that expired a minute ago (checks of token expiry need one)."""
        email = request.query_params.get("email", "").strip().lower()
        user = stack.store.auth.users.get(email)
        if user is None:
            return JSONResponse({"error": f"no user {email!r}"}, status_code=404)
        token = stack.shared["signer"].issue(user.id, user.email, -60)
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": -60})

    async def leftovers(request: Request) -> JSONResponse:
        """Synthetic data a check run left behind: what a clean run must leave empty."""
        store = stack.store
        synthetic_orders = {o.id: o for o in store.orders.orders.values() if o.synthetic}
        return JSONResponse(
            {
                "held_reservations": sorted(
                    r.id for r in store.inventory.reservations.values() if r.status == "held" and r.order_id in synthetic_orders
                ),
                "unrefunded_payments": sorted(
                    p.id for p in store.payments.payments.values() if p.synthetic and p.status == "succeeded"
                ),
                "open_orders": sorted(o.id for o in synthetic_orders.values() if o.status != "cancelled"),
            }
        )

    def simulator() -> Any:
        return getattr(stack, "kube", None)

    async def kube_fault(request: Request) -> JSONResponse:
        """Inject a Kubernetes fault (kubesim.faults.FAULTS) into the simulator, e.g. PUT /kube/faults/order/crashloop."""
        sim = simulator()
        if sim is None:
            return JSONResponse({"error": "this stack runs no Kubernetes simulator"}, status_code=404)
        params: Any = await request.json() if await request.body() else {}
        try:
            obj = sim.inject(request.path_params["kind"], request.path_params["service"], **params)
        except KubeFaultError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        return JSONResponse({"applied": request.path_params["kind"], "object": obj.get("metadata", {}).get("name")})

    async def kube_reset(request: Request) -> JSONResponse:
        sim = simulator()
        if sim is not None:
            sim.reset()
        return JSONResponse({"reset": sim is not None})

    async def kube_writes(request: Request) -> JSONResponse:
        """Every change the Kubernetes API was asked for, with the time it received it (for make bench)."""
        sim = simulator()
        writes = list(sim.api.writes) if sim is not None else []
        return JSONResponse([{"time": t, "method": m, "path": p} for t, m, p in writes])

    async def kube_summary(request: Request) -> JSONResponse:
        sim = simulator()
        return JSONResponse(sim.summary() if sim is not None else {})

    return Starlette(
        routes=[
            Route("/kube/faults/{service}/{kind}", kube_fault, methods=["PUT", "POST"]),
            Route("/kube/faults", kube_reset, methods=["DELETE"]),
            Route("/kube", kube_summary, methods=["GET"]),
            Route("/kube/writes", kube_writes, methods=["GET"]),
            Route("/leftovers", leftovers, methods=["GET"]),
            Route("/tokens/expired", expired_token, methods=["GET"]),
            Route("/", describe),
            Route("/events", events, methods=["GET"]),
            Route("/faults", list_faults, methods=["GET"]),
            Route("/faults", clear_faults, methods=["DELETE"]),
            Route("/faults/{service}", clear_faults, methods=["DELETE"]),
            Route("/faults/{service}/{kind}", set_fault, methods=["PUT", "POST"]),
            Route("/faults/{service}/{kind}", clear_faults, methods=["DELETE"]),
        ]
    )
