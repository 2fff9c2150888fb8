"""Small helpers the local services share for JSON answers and bearer authentication."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, TypeVar

import httpx
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from .context import ServiceContext

SYNTHETIC_DOMAIN = "@synthetic.polyshop.test"

# An idle keep-alive connection is closed by the server after this long; the services' own clients drop theirs
# sooner (PEER_LIMITS), so a client never reuses a connection the server is closing at that very moment (with
# uvicorn's 5 s and httpx's 5 s, that race answered some requests "Server disconnected" under concurrent load).
# As many kept alive as may be open: httpcore's pool (1.0.9, encode/httpcore#1110) closes an idle connection it has
# just assigned to another request whenever the pool holds more than max_keepalive_connections, and the request
# then waits out its whole timeout (through the gateway: a 504 upstream_timeout for a healthy upstream).
SERVER_KEEP_ALIVE_SECONDS = 30
PEER_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100, keepalive_expiry=10.0)


def error(status_code: int, code: str, /, **details: Any) -> JSONResponse:
    """A JSON error answer `{"error": code, ...details}` (a detail may be named `status`)."""
    return JSONResponse({"error": code, **details}, status_code=status_code)


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
    forged_ok = ctx.faults.is_set("auth", "accept_forged")  # every service trusts auth's verification
    return ctx.shared["signer"].verify(token.strip(), check_signature=not forged_ok)


T = TypeVar("T")


def owned_by_caller(
    ctx: ServiceContext, request: Request, records: Mapping[str, T], key: str, what: str, *, leak: bool = False
) -> T | JSONResponse:
    """The record named by path parameter `key` if it belongs to the bearer's user, else the 401/404 answer to give.

    Another user's record is 404, not 403: its existence is nobody else's business (polyshop-api.md).
    `leak` (the leak_orders / leak_payments faults) hands out any user's record.
    """
    claims = bearer_claims(ctx, request)
    if claims is None:
        return unauthorized()
    found = records.get(request.path_params[key])
    if found is None or (getattr(found, "user_id", None) != claims["sub"] and not leak):
        return error(404, "not_found", detail=f"no such {what}")
    return found


def unauthorized() -> JSONResponse:
    return error(401, "unauthorized", detail="a valid bearer token is required")


def is_synthetic(email: str) -> bool:
    return email.lower().endswith(SYNTHETIC_DOMAIN)


def idempotency_key(request: Request) -> str | None:
    """The request's Idempotency-Key (1..255 printable characters), or None."""
    key = request.headers.get("idempotency-key", "").strip()
    return key if 0 < len(key) <= 255 else None


def missing_idempotency_key() -> JSONResponse:
    return error(400, "idempotency_key_required", detail="send an Idempotency-Key header (a UUID)")


def body_fingerprint(body: dict[str, Any]) -> str:
    """A stable digest of a JSON body, to tell a replay from a reused key."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def positive_int(value: Any, high: int = 10**9) -> int | None:
    """The value if it is an int (not a bool) in 1..high, else None."""
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= high:
        return value
    return None


def is_synthetic_request(request: Request) -> bool:
    return request.headers.get("x-synthetic", "").strip().lower() == "true"


def json_exception_handlers() -> dict[Any, Any]:
    """Starlette exception handlers that answer JSON: 404/405 for routing, 500 for a bug."""

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        status = getattr(exc, "status_code", 500)
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
        headers = getattr(exc, "headers", None)
        return JSONResponse({"error": code, "path": request.url.path}, status_code=status, headers=headers)

    async def crash(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": "internal_error"}, status_code=500)

    return {HTTPException: http_error, Exception: crash}
