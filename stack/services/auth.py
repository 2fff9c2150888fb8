"""Auth: login, the current user, synthetic account provisioning.

Faults: `reject_logins` (valid credentials answer 401), `expire_tokens` (tokens issued already expired),
`provision_anyone` (non-synthetic accounts are provisioned); `accept_forged` acts in http_util.bearer_claims.
"""

from __future__ import annotations

import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..cache import TtlCache
from ..context import ServiceContext
from ..domain import User
from ..http_util import bearer_claims, error, is_synthetic, json_body, unauthorized
from .parts import ServiceParts, store_of

TOKEN_TTL_SECONDS = 900
USER_CACHE_TTL_SECONDS = 60.0
MAX_PASSWORD_LENGTH = 256


def _credentials(body: dict[str, Any] | None) -> tuple[str, str] | None:
    """(lower-cased email, password) from a login or sign-up body, or None when malformed."""
    if not body or not isinstance(body.get("email"), str) or not isinstance(body.get("password"), str):
        return None
    email, password = body["email"].strip().lower(), body["password"]
    local, _, domain = email.partition("@")
    if not local or "." not in domain or not password or len(password) > MAX_PASSWORD_LENGTH:
        return None
    return email, password


def build(ctx: ServiceContext) -> ServiceParts:
    data = store_of(ctx).auth
    cache = TtlCache(ctx)

    async def login(request: Request) -> JSONResponse:
        creds = _credentials(await json_body(request))
        if creds is None:
            return error(422, "invalid_body", detail='expected {"email": str, "password": str}')
        user = data.users.get(creds[0])
        if ctx.faults.is_set(ctx.name, "reject_logins") or user is None or not secrets.compare_digest(
            user.password.encode(), creds[1].encode()
        ):
            return error(401, "invalid_credentials")
        ttl = 0 if ctx.faults.is_set(ctx.name, "expire_tokens") else TOKEN_TTL_SECONDS
        token = ctx.shared["signer"].issue(user.id, user.email, ttl)
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": ttl})

    async def me(request: Request) -> JSONResponse:
        claims = bearer_claims(ctx, request)
        if claims is None:
            return unauthorized()
        email = str(claims.get("email", ""))

        def load() -> dict[str, Any] | None:
            user = data.users.get(email)
            return {"id": user.id, "email": user.email, "synthetic": user.synthetic} if user else None

        profile = cache.get_or_load(f"user:{email}", USER_CACHE_TTL_SECONDS, load)
        if profile is None or profile["id"] != claims.get("sub"):
            return unauthorized()
        if ctx.faults.is_set(ctx.name, "me_other_user"):  # the bug: another user's profile answers
            return JSONResponse({**profile, "id": f"usr_other_{profile['id']}", "email": f"other-{email}"})
        return JSONResponse(profile)

    async def create_user(request: Request) -> JSONResponse:
        creds = _credentials(await json_body(request))
        if creds is None:
            return error(422, "invalid_body", detail='expected {"email": str, "password": str}')
        email, password = creds
        if not is_synthetic(email) and not ctx.faults.is_set(ctx.name, "provision_anyone"):
            return error(403, "forbidden", detail="only synthetic accounts may be provisioned")
        if email in data.users:
            return error(409, "exists", detail=f"{email} already exists")
        user = User(id=f"usr_{secrets.token_hex(6)}", email=email, password=password, synthetic=is_synthetic(email))
        data.users[email] = user
        return JSONResponse({"id": user.id, "email": user.email}, status_code=201)

    return ServiceParts(
        routes=[
            Route("/api/auth/login", login, methods=["POST"]),
            Route("/api/auth/me", me, methods=["GET"]),
            Route("/api/auth/users", create_user, methods=["POST"]),
        ]
    )
