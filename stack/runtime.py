"""Runs the local PolyShop stack: one HTTP server per service on a loopback port, plus the control API."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from typing import Any, Iterator

import uvicorn
from starlette.applications import Starlette

from .catalog import SERVICES
from .context import ServiceContext
from .control import control_app
from .domain import Store, seed_catalogue
from .faults import FaultBoard
from .gateway import gateway_routes
from .health import health_routes
from .middleware import ServiceMiddleware
from .services import BUSINESS_ROUTES
from .telemetry import ServiceMetrics
from .tokens import TokenSigner


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the stack (many servers share one loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpServer:
    """One ASGI app on one loopback port; can be stopped (connection refused) and started again on that port."""

    def __init__(self, app: Any, host: str, port: int = 0) -> None:
        self.app, self.host, self.port = app, host, port
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        deadline = time.monotonic() + 10
        while not self._server.started:
            if self._task.done() or time.monotonic() > deadline:
                raise RuntimeError(f"server on {self.url} did not start")
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        self._server = self._task = None


class Stack:
    """The eight services, their shared state and fault board."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.faults = FaultBoard()
        store = Store()
        seed_catalogue(store)
        self.shared: dict[str, Any] = {"store": store, "signer": TokenSigner(), "closers": []}
        self.contexts = {
            name: ServiceContext(spec, self.faults, ServiceMetrics.for_service(spec), shared=self.shared)
            for name, spec in SERVICES.items()
        }
        self.servers = {name: HttpServer(self._service_app(ctx), host) for name, ctx in self.contexts.items()}
        self.control = HttpServer(control_app(self), host)
        self.started_at = time.time()

    def _service_app(self, ctx: ServiceContext) -> Any:
        routes = health_routes(ctx)
        if ctx.name == "gateway":
            routes += gateway_routes(ctx)
        else:
            routes += BUSINESS_ROUTES[ctx.name](ctx)
        return ServiceMiddleware(Starlette(routes=routes), ctx)

    async def start(self) -> None:
        for server in self.servers.values():
            await server.start()
        peers = {name: server.url for name, server in self.servers.items()}
        for ctx in self.contexts.values():
            ctx.peers.update(peers)
        await self.control.start()

    async def stop(self) -> None:
        for server in [*self.servers.values(), self.control]:
            await server.stop()
        for close in self.shared["closers"]:
            await close()

    async def reconcile(self, service: str) -> None:
        """Make the service's listener match the 'down' fault: closed while set, open again once cleared."""
        server = self.servers[service]
        down = self.faults.get(service, "down") is not None
        if down and server.running:
            await server.stop()
        elif not down and not server.running:
            await server.start()

    def describe(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "started_at": self.started_at,
            "gateway": self.servers["gateway"].url,
            "services": {name: server.url for name, server in self.servers.items()},
            "control": self.control.url,
        }
