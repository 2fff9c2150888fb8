"""What every local PolyShop service does around each request: trace headers, metrics, faults."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .bad_input import crash_on_bad_input

if TYPE_CHECKING:
    from .context import ServiceContext

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(frozen=True)
class TraceContext:
    """The W3C trace this request belongs to and the span this service opened for it."""

    trace_id: str
    span_id: str
    request_id: str
    sampled: str = "01"

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.sampled}"

    @classmethod
    def continue_from(cls, traceparent: str | None, request_id: str | None) -> TraceContext:
        match = TRACEPARENT.match(traceparent or "")
        trace_id = match.group(1) if match and match.group(1) != "0" * 32 else secrets.token_hex(16)
        sampled = match.group(3) if match else "01"
        return cls(trace_id, secrets.token_hex(8), request_id or secrets.token_hex(16), sampled)


def trace_of(scope: dict[str, Any]) -> TraceContext:
    return scope["polyshop.trace"]


class ServiceMiddleware:
    """ASGI middleware: continue the trace, count and time the request, apply injected faults."""

    def __init__(self, app: Any, ctx: ServiceContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        faults, name = self.ctx.faults, self.ctx.name
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        incoming = None if faults.is_set(name, "break_trace") else headers.get("traceparent")  # the fault starts anew
        trace = TraceContext.continue_from(incoming, headers.get("x-request-id"))
        scope["polyshop.trace"] = trace
        started = time.perf_counter()
        status = 500
        router = self.ctx.shared.get("canary")
        pod = router.pod_for(self.ctx.name) if router is not None and self.ctx.spec.canary else None
        scope["polyshop.pod"] = pod

        async def send_with_headers(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                extra = [] if faults.is_set(name, "no_request_id") else [(b"x-request-id", trace.request_id.encode())]
                extra.append((b"traceparent", trace.traceparent.encode()))
                message["headers"] = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() not in (b"x-request-id", b"traceparent")
                ] + extra
            await send(message)

        send_answer = send_with_headers
        if faults.is_set(name, "error_on_bad_input"):
            send_answer = crash_on_bad_input(send_with_headers, name)
        try:
            if not await self._apply_faults(scope, send_with_headers):
                await self.app(scope, receive, send_answer)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.ctx.metrics.observe(
                template, scope["method"], status, time.perf_counter() - started, pod.pod_hash if pod else ""
            )

    async def _apply_faults(self, scope: dict[str, Any], send: Any) -> bool:
        """Apply the faults set for this service; True when the fault already answered."""
        faults, name, path = self.ctx.faults, self.ctx.name, scope["path"]
        if faults.matching(name, "hang", path):
            await faults.wait_released(name)
        slow = faults.matching(name, "slow", path)
        pod = scope.get("polyshop.pod")
        if slow and (slow.get("pods", "all") == "all" or (pod and pod.canary)):
            await asyncio.sleep(slow["seconds"])
        if faults.is_set(name, "proxy_error"):
            await _send_whole(send, 502, b"text/html", PROXY_ERROR_PAGE)
            return True
        errors = faults.matching(name, "errors", path)
        if errors and errors["pods"] == "canary" and not (pod and pod.canary):
            errors = None
        if errors and faults.should_fail(name, errors["ratio"]):
            await _send_whole(send, errors["status"], b"application/json",
                              json.dumps({"error": "internal_error", "service": name}).encode())
            return True
        return False


# the page a proxy in front of every service answers with (the same bytes whichever service is behind it)
PROXY_ERROR_PAGE = b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>\n"


async def _send_whole(send: Any, status: int, content_type: bytes, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
