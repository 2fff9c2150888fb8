"""The `error_on_bad_input` fault: a service that crashes on the input it should refuse with a 4xx.

The contract's answer to a malformed body or query is a 422 `invalid_body` / `invalid_query`; with the
fault set, that answer becomes a 500 `internal_error`, as if the validation had thrown. Other 4xx answers
(unknown SKU, amount mismatch, a missing Idempotency-Key) are kept.
"""

from __future__ import annotations

import json
from typing import Any
from collections.abc import Awaitable, Callable

BAD_INPUT_ERRORS = frozenset({"invalid_body", "invalid_query"})
BAD_INPUT_STATUS = 422

Send = Callable[[dict[str, Any]], Awaitable[None]]


def _is_bad_input(body: bytes) -> bool:
    try:
        answer = json.loads(body)
    except ValueError:
        return False
    return isinstance(answer, dict) and answer.get("error") in BAD_INPUT_ERRORS


def crash_on_bad_input(send: Send, service: str) -> Send:
    """Wrap an ASGI `send`: a 422 answer to malformed input goes out as a 500 instead."""
    held: list[dict[str, Any]] = []

    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] == BAD_INPUT_STATUS:
            held.append(message)
            return
        if not held:
            await send(message)
            return
        held.append(message)
        if message.get("more_body"):
            return
        messages = list(held)
        held.clear()
        if not _is_bad_input(b"".join(m.get("body", b"") for m in messages[1:])):
            for kept in messages:
                await send(kept)
            return
        crash = json.dumps({"error": "internal_error", "service": service}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(crash)).encode())]
        await send({"type": "http.response.start", "status": 500, "headers": headers})
        await send({"type": "http.response.body", "body": crash})

    return wrapped
