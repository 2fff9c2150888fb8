"""Keep secrets out of failure messages, report attachments, traces and every file a run writes.

Two layers:
- by shape: Authorization headers, `Bearer …`, and secret-named fields (`password`, `access_token`, …);
- by value: a registry of the secret values this process has seen (a `${VAR}` secret revealed, the
  synthetic account's password, every token a login returned, webhook URLs). Any of them is replaced by
  `[REDACTED]` wherever it shows, also JSON-escaped or URL-encoded, and also inside files and zip archives
  (`scrub_file`), so a Playwright snapshot that happens to carry the password cannot leak it.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus, urlsplit

REDACTED = "[REDACTED]"
SECRET_HEADERS = {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token"}
SECRET_KEY = re.compile(r"pass(word)?|secret|token|api[_-]?key|credential|authorization|cookie", re.IGNORECASE)
BEARER = re.compile(r"(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
SECRET_PAIR = re.compile(
    r'("?(?:password|passwd|secret|access_token|refresh_token|token|api_key|card_token)"?\s*[:=]\s*)("[^"]*"|[^\s,&}]+)',
    re.IGNORECASE,
)
# values shorter than this are not registered: replacing them would redact ordinary words
MIN_SECRET_LENGTH = 6

_lock = threading.Lock()
_secrets: set[str] = set()
_forms: tuple[str, ...] = ()  # every registered value in each spelling it may take, longest first


def _spellings(value: str) -> set[str]:
    forms = {value, json.dumps(value)[1:-1], quote(value, safe=""), quote_plus(value, safe=""), quote(value, safe="/:")}
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def register_secret(value: str | None) -> str | None:
    """Remember a secret value, so that no report, attachment or file of this run shows it. Returns it."""
    global _forms
    if value and len(value) >= MIN_SECRET_LENGTH and value not in _secrets:
        with _lock:
            _secrets.add(value)
            forms = set(_forms) | _spellings(value)
            _forms = tuple(sorted(forms, key=len, reverse=True))
    return value


def register_secrets(values: Iterable[str | None]) -> None:
    for value in values:
        register_secret(value)


def known_secrets() -> tuple[str, ...]:
    """The registered secret values (for the self-tests and the file scrubber)."""
    with _lock:
        return tuple(sorted(_secrets))


def forget_secrets() -> None:
    """Clear the registry (unit tests)."""
    global _forms
    with _lock:
        _secrets.clear()
        _forms = ()


def redact_secrets(text: str) -> str:
    """`text` with every registered secret value and every bearer/basic credential replaced."""
    for form in _forms:
        if form in text:
            text = text.replace(form, REDACTED)
    return BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


def redact_bytes(data: bytes) -> bytes:
    """The same for raw bytes (files of any kind): registered values only."""
    for form in _forms:
        encoded = form.encode()
        if encoded in data:
            data = data.replace(encoded, REDACTED.encode())
    return data


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: (REDACTED if k.lower() in SECRET_HEADERS else redact_secrets(v)) for k, v in headers.items()}


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
    """Free text (a body, a message) with registered secrets, bearer credentials and secret fields replaced."""
    try:
        parsed = json.loads(text)
    except (ValueError, TypeError):
        parsed = None
    if isinstance(parsed, (dict, list)):
        return json.dumps(redact_data(parsed))
    return redact_fields(redact_secrets(text))


def redact_fields(text: str) -> str:
    """`password=…`, `"access_token": "…"` and the like, in free text, with their values replaced."""
    return SECRET_PAIR.sub(lambda m: f"{m.group(1)}{REDACTED}", text)


def shown_url(url: str) -> str:
    """A URL as reports may show it: scheme and host only (a webhook's path, query and credentials are its secret)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return REDACTED
    if not parts.scheme or not host:
        return REDACTED
    tail = "/…" if (parts.path.strip("/") or parts.query) else ""
    return f"{parts.scheme}://{host}{port}{tail}"
