"""Verdicts on authentication answers, and the tampered tokens the checks present."""

from __future__ import annotations

import base64

import httpx

from polycheck.core.failures import check_failed
from polycheck.clients.http import exchange_of


def forge(token: str, tampering: str) -> str:
    """A token the auth service must refuse: its signature or claims altered, or no token at all."""
    if tampering == "malformed":
        return "not-a-token"
    if tampering == "forged-signature":
        head, sep, tail = token.rpartition(".")
        if not sep:
            return token[:-1] + ("A" if token[-1] != "A" else "B")
        flipped = ("A" if tail[:1] != "A" else "B") + tail[1:]
        return f"{head}.{flipped}"
    if tampering == "forged-claims":
        parts = token.split(".")
        payload_index = 1 if len(parts) == 3 else 0  # JWT: header.payload.signature; else payload.signature
        raw = parts[payload_index] + "=" * (-len(parts[payload_index]) % 4)
        try:
            claims = base64.urlsafe_b64decode(raw)
        except ValueError:
            claims = raw.encode()
        altered = claims.replace(b'"sub":"', b'"sub":"x') if b'"sub":"' in claims else claims + b" "
        parts[payload_index] = base64.urlsafe_b64encode(altered).rstrip(b"=").decode()
        return ".".join(parts)
    raise ValueError(f"unknown tampering {tampering!r}")


def expect_rejected(response: httpx.Response, what: str, error: str | None = None) -> None:
    """The auth answer is 401 (and, when given, carries `error`)."""
    __tracebackhide__ = True
    exchange = exchange_of(response)
    if response.status_code != 401:
        verdict = "ACCEPTED" if response.status_code < 300 else f"answered {response.status_code}"
        check_failed(f"{exchange.line}: {what} was {verdict}, expected 401: {exchange.preview()}\n  ({exchange.ids})")
    if error is not None:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("error") != error:
            check_failed(f"{exchange.line}: 401 for {what} without error {error!r}: {exchange.preview()}\n  ({exchange.ids})")
