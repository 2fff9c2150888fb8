"""Bounded cost whatever a service answers: every response body the checker reads is read up to a cap.

A body over its cap (declared by Content-Length, or counted while it streams, after any content decoding, so a
compressed bomb counts at its real size) fails the request at once, naming the size; the checker never holds
more than the cap of one body. `/metrics` has its own, larger cap (an exposition of many series is big by nature).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

MIB = 1024 * 1024


class BodyTooLarge(Exception):
    """The answer's body is over the cap; the message says how big, and which setting raises the cap."""


@dataclass(frozen=True)
class BodyLimits:
    body_bytes: int = 2 * MIB  # http.max_body_bytes
    metrics_bytes: int = 16 * MIB  # http.max_metrics_body_bytes

    def for_path(self, path: str) -> tuple[int, str]:
        """The cap of a request's path, and the env file's setting for it."""
        if path.split("?", 1)[0].rstrip("/").endswith("/metrics"):
            return self.metrics_bytes, "http.max_metrics_body_bytes"
        return self.body_bytes, "http.max_body_bytes"


DEFAULT_LIMITS = BodyLimits()


def shown_size(count: int) -> str:
    return f"{count / MIB:.1f} MiB" if count >= MIB else f"{count} bytes"


def send_capped(client: httpx.Client, request: httpx.Request, limit: int, setting: str) -> httpx.Response:
    """`client.send(request)`, its body read to at most `limit` bytes; raises BodyTooLarge beyond it. The returned
    response is read (its `content`, `text` and `json()` work as usual)."""
    response = client.send(request, stream=True)
    try:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit and "content-encoding" not in response.headers:
            raise BodyTooLarge(f"the answer declares a body of {shown_size(int(declared))} (Content-Length), over the "
                               f"cap of {shown_size(limit)} ({setting}); nothing of it was read")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(f"the answer's body is over the cap of {shown_size(limit)} ({setting}): more than "
                                   f"{shown_size(limit)} read, the rest refused")
            chunks.append(chunk)
    finally:
        response.close()
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in ("content-encoding", "content-length",
                                                                                     "transfer-encoding")]
    read = httpx.Response(response.status_code, headers=headers, content=b"".join(chunks), request=request,
                          extensions=dict(response.extensions))
    return read
