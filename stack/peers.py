"""Service-to-service HTTP: a service calls another's cluster-internal API, continuing the caller's trace."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.responses import JSONResponse

from .context import ServiceContext
from .http_util import PEER_LIMITS, error
from .middleware import TraceContext

PEER_TIMEOUT = httpx.Timeout(3.0, connect=1.0)


class PeerError(Exception):
    """A peer could not be reached, or answered with a server error."""

    def __init__(self, service: str, detail: str, status: int | None = None) -> None:
        super().__init__(f"{service}: {detail}")
        self.service, self.detail, self.status = service, detail, status

    def response(self) -> JSONResponse:
        """The answer to give our own caller: 503 when the peer is unreachable, 502 when it failed."""
        if self.status is None:
            return error(503, "dependency_unavailable", dependency=self.service, detail=self.detail)
        return error(502, "dependency_error", dependency=self.service, detail=self.detail)


class PeerClient:
    """One service's HTTP client for its peers (`ctx.peers`), closed with the stack."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.http = httpx.AsyncClient(timeout=PEER_TIMEOUT, limits=PEER_LIMITS)
        ctx.shared.setdefault("closers", []).append(self.http.aclose)

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        trace: TraceContext,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | list[tuple[str, str]] | None = None,
        synthetic: bool = False,
    ) -> httpx.Response:
        """Call a peer with our span as the parent; raise PeerError on transport failures and 5xx."""
        headers = {
            "traceparent": trace.traceparent,
            "x-request-id": trace.request_id,
            "user-agent": self.ctx.spec.deployment,
        }
        if synthetic:
            headers["x-synthetic"] = "true"
        try:
            url = self.ctx.peers[service] + path
            response = await self.http.request(method, url, headers=headers, json=json, params=params)
        except httpx.TimeoutException:
            raise PeerError(service, f"{method} {path} timed out") from None
        except httpx.TransportError as exc:
            raise PeerError(service, f"{method} {path}: {type(exc).__name__}") from None
        if response.status_code >= 500:
            raise PeerError(service, f"{method} {path} answered {response.status_code}", response.status_code)
        return response
