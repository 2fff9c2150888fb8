"""Keep secrets out of failure messages, report attachments, traces and every file a run writes.

Two layers:
- by shape: Authorization headers, `Bearer …`, and secret-named fields (`password`, `access_token`, …);
- by value: a registry of the secret values this process has seen, of any length (a `${VAR}` secret revealed, the
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
# A registered value is replaced where it stands as a whole: not where it is only part of a longer word or token
# ("shop1" is a secret; "workshop12" is not it). So a secret of any length can be registered without rewriting
# ordinary text. Before a secret that starts with a word character (letter, digit, `_`) there is none, unless it ends
# an escape (`%3D`, `\n`, `\u0022`: the secret inside URL-encoded or JSON-escaped text); after one that ends with a
# word character there is none.
_WORD, _WORD_BYTES = r"\w", rb"[A-Za-z0-9_\x80-\xff]"
_ESCAPED = r"(?<=%[0-9A-Fa-f]{2})|(?<=\\[nrtbf\"/])|(?<=\\u[0-9A-Fa-f]{4})"

_lock = threading.Lock()
_secrets: set[str] = set()
# every registered value in each spelling it may take, longest first, with its whole-value patterns (text, bytes)
_forms: tuple[tuple[str, re.Pattern[str], re.Pattern[bytes]], ...] = ()


def _spellings(value: str) -> set[str]:
    forms = {value, json.dumps(value)[1:-1], quote(value, safe=""), quote_plus(value, safe=""), quote(value, safe="/:")}
    return {form for form in forms if form}


def _whole(form: str) -> tuple[re.Pattern[str], re.Pattern[bytes]]:
    """`form` where it stands as a whole value (see above), as a text and a bytes pattern."""
    starts, ends = form[0].isalnum() or form[0] == "_", form[-1].isalnum() or form[-1] == "_"
    text = (f"(?:(?<!{_WORD})|{_ESCAPED})" if starts else "") + re.escape(form) + (f"(?!{_WORD})" if ends else "")
    escaped = _ESCAPED.encode()
    data = ((b"(?:(?<!" + _WORD_BYTES + b")|" + escaped + b")") if starts else b"") + re.escape(form.encode()) + (
        (b"(?!" + _WORD_BYTES + b")") if ends else b"")
    return re.compile(text), re.compile(data)


def register_secret(value: str | None) -> str | None:
    """Remember a secret value of any length, so that no report, attachment or file of this run shows it. Returns it."""
    global _forms
    if value and value not in _secrets:
        with _lock:
            _secrets.add(value)
            known = {form for form, _, _ in _forms}
            added = [(form, *_whole(form)) for form in _spellings(value) - known]
            _forms = tuple(sorted([*_forms, *added], key=lambda entry: len(entry[0]), reverse=True))
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
    """`text` with every registered secret value (where it stands whole) and every bearer/basic credential replaced."""
    for form, pattern, _ in _forms:
        if form in text:
            text = pattern.sub(REDACTED, text)
    return BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


def redact_bytes(data: bytes) -> bytes:
    """The same for raw bytes (files of any kind): registered values only."""
    for form, _, pattern in _forms:
        if form.encode() in data:
            data = pattern.sub(REDACTED.encode(), data)
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
