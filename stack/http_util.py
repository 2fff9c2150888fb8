"""Small helpers the local services share for JSON answers and bearer authentication."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from .context import ServiceContext

SYNTHETIC_DOMAIN = "@synthetic.polyshop.test"


def error(status: int, code: str, **details: Any) -> JSONResponse:
    return JSONResponse({"error": code, **details}, status_code=status)


async def json_body(request: Request) -> dict[str, Any] | None:
    """The request's JSON object, or None when the body is not one."""
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def bearer_claims(ctx: ServiceContext, request: Request) -> dict[str, Any] | None:
    """The verified claims of the request's bearer token, or None."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return ctx.shared["signer"].verify(token.strip())


def unauthorized() -> JSONResponse:
    return error(401, "unauthorized", detail="a valid bearer token is required")


def is_synthetic(email: str) -> bool:
    return email.lower().endswith(SYNTHETIC_DOMAIN)
