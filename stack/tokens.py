"""Signed, expiring bearer tokens for the local auth service (HMAC-SHA256 over a JSON payload)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Issues and verifies `<payload>.<signature>` tokens; the key lives only in this process."""

    def __init__(self, key: bytes | None = None) -> None:
        self.key = key or secrets.token_bytes(32)

    def issue(self, user_id: str, email: str, ttl_seconds: int) -> str:
        payload = {"sub": user_id, "email": email, "exp": int(time.time()) + ttl_seconds, "jti": secrets.token_hex(8)}
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{self._sign(body)}"

    def verify(self, token: str, *, check_signature: bool = True) -> dict[str, Any] | None:
        """The token's claims, or None when it is malformed, forged (unless told not to check) or expired."""
        body, _, signature = token.partition(".")
        if not body or not signature:
            return None
        if check_signature and not hmac.compare_digest(signature, self._sign(body)):
            return None
        try:
            claims = json.loads(_unb64(body))
        except ValueError:
            return None
        if not isinstance(claims, dict) or not isinstance(claims.get("sub"), str):
            return None
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= time.time():
            return None
        return claims

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self.key, body.encode(), hashlib.sha256).digest())
