"""Keep secrets out of failure messages and report attachments."""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

REDACTED = "[REDACTED]"
SECRET_HEADERS = {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token"}
SECRET_KEY = re.compile(r"pass(word)?|secret|token|api[_-]?key|credential|authorization|cookie", re.IGNORECASE)
BEARER = re.compile(r"(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
SECRET_PAIR = re.compile(
    r'("?(?:password|passwd|secret|access_token|refresh_token|token|api_key|card_token)"?\s*[:=]\s*)("[^"]*"|[^\s,&}]+)',
    re.IGNORECASE,
)


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: (REDACTED if k.lower() in SECRET_HEADERS else v) for k, v in headers.items()}


def redact_data(value: Any) -> Any:
    """A copy of a JSON-like value with every secret-looking key's value replaced."""
    if isinstance(value, dict):
        return {k: (REDACTED if SECRET_KEY.search(str(k)) else redact_data(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_data(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_text(text: str) -> str:
    """Free text (a body, a message) with bearer credentials and secret fields replaced."""
    try:
        parsed = json.loads(text)
    except (ValueError, TypeError):
        parsed = None
    if isinstance(parsed, (dict, list)):
        return json.dumps(redact_data(parsed))
    text = BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return SECRET_PAIR.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
