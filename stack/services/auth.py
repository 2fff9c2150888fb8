"""Auth: login, the current user, synthetic account provisioning."""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..context import ServiceContext
from ..domain import User
from ..http_util import bearer_claims, error, is_synthetic, json_body, unauthorized

TOKEN_TTL_SECONDS = 900


def _credentials(body: dict | None) -> tuple[str, str] | None:
    if not body or not isinstance(body.get("email"), str) or not isinstance(body.get("password"), str):
        return None
    if "@" not in body["email"] or not body["password"]:
        return None
    return body["email"].strip().lower(), body["password"]


def routes(ctx: ServiceContext) -> list[Route]:
    store = ctx.shared["store"]

    async def login(request: Request) -> JSONResponse:
        creds = _credentials(await json_body(request))
        if creds is None:
            return error(422, "invalid_body", detail="expected {\"email\": str, \"password\": str}")
        user = store.users.get(creds[0])
        if ctx.faults.get(ctx.name, "reject_logins") or user is None or not secrets.compare_digest(user.password, creds[1]):
            return error(401, "invalid_credentials")
        ttl = 0 if ctx.faults.get(ctx.name, "expire_tokens") else TOKEN_TTL_SECONDS
        token = ctx.shared["signer"].issue(user.id, user.email, ttl)
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": ttl})

    async def me(request: Request) -> JSONResponse:
        claims = bearer_claims(ctx, request)
        user = store.users.get(str(claims.get("email", ""))) if claims else None
        if user is None or user.id != claims.get("sub"):
            return unauthorized()
        return JSONResponse({"id": user.id, "email": user.email, "synthetic": user.synthetic})

    async def create_user(request: Request) -> JSONResponse:
        creds = _credentials(await json_body(request))
        if creds is None:
            return error(422, "invalid_body", detail="expected {\"email\": str, \"password\": str}")
        email, password = creds
        if not is_synthetic(email):
            return error(403, "forbidden", detail="only synthetic accounts may be provisioned")
        if email in store.users:
            return error(409, "exists", detail=f"{email} already exists")
        user = User(id=f"usr_{secrets.token_hex(6)}", email=email, password=password, synthetic=True)
        store.users[email] = user
        return JSONResponse({"id": user.id, "email": user.email}, status_code=201)

    return [
        Route("/api/auth/login", login, methods=["POST"]),
        Route("/api/auth/me", me, methods=["GET"]),
        Route("/api/auth/users", create_user, methods=["POST"]),
    ]
