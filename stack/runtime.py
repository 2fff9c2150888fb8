"""Runs the local PolyShop stack: one HTTP server per service on a loopback port, plus the control API."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from typing import Any
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette

from .catalog import DB_FAMILIES, SERVICES
from .context import ServiceContext
from .control import control_app
from .db import DbPool, DbPoolMiddleware
from .domain import Store, seed_catalogue
from .events import EventBus
from .faults import FaultBoard
from .gateway import gateway_routes
from .health import health_routes
from .http_util import SERVER_KEEP_ALIVE_SECONDS, json_exception_handlers
from .middleware import ServiceMiddleware
from .services import SERVICE_BUILDERS, ServiceParts
from .telemetry import ServiceMetrics
from .tokens import TokenSigner

INITIAL_INDEX_TIMEOUT_SECONDS = 10.0


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
        # proto IPPROTO_TCP, so that asyncio sets TCP_NODELAY on accepted connections; with proto 0 it does
        # not, and Nagle holds each response body until the client's delayed ACK (~40 ms per request).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1,
            timeout_keep_alive=SERVER_KEEP_ALIVE_SECONDS,
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
    """The eight services, their data, event bus, workers and fault board."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.faults = FaultBoard()
        self.store = Store()
        seed_catalogue(self.store)
        self.bus = EventBus()
        self.shared: dict[str, Any] = {"store": self.store, "signer": TokenSigner(), "closers": [], "bus": self.bus}
        self.contexts = {
            name: ServiceContext(spec, self.faults, ServiceMetrics.for_service(spec), shared=self.shared)
            for name, spec in SERVICES.items()
        }
        self.parts: dict[str, ServiceParts] = {}
        self.servers = {name: HttpServer(self._service_app(ctx), host) for name, ctx in self.contexts.items()}
        self.control = HttpServer(control_app(self), host)
        self._workers: list[asyncio.Task[None]] = []
        self.started_at = time.time()

    def _service_app(self, ctx: ServiceContext) -> Any:
        routes = health_routes(ctx)
        if ctx.name == "gateway":
            routes += gateway_routes(ctx)
        else:
            parts = self.parts[ctx.name] = SERVICE_BUILDERS[ctx.name](ctx)
            routes += parts.routes
            if set(parts.subscriptions) != set(ctx.spec.consumes):
                raise RuntimeError(f"{ctx.name} consumes {sorted(parts.subscriptions)}; its spec: {ctx.spec.consumes}")
            for topic, handler in parts.subscriptions.items():
                self.bus.subscribe(ctx, topic, handler, parts.paused)
        app: Any = Starlette(routes=routes, exception_handlers=json_exception_handlers())
        if set(DB_FAMILIES) <= set(ctx.spec.families):
            app = DbPoolMiddleware(app, DbPool(ctx))
        return ServiceMiddleware(app, ctx)

    async def start(self) -> None:
        for server in self.servers.values():
            await server.start()
        peers = {name: server.url for name, server in self.servers.items()}
        for ctx in self.contexts.values():
            ctx.peers.update(peers)
        self.bus.start()
        self._workers = [asyncio.create_task(work()) for parts in self.parts.values() for work in parts.workers]
        await self._initial_index()
        await self.control.start()

    async def _initial_index(self) -> None:
        """Wait until the search index holds the whole catalogue, as a deployed index would at start."""
        deadline = time.monotonic() + INITIAL_INDEX_TIMEOUT_SECONDS
        while len(self.store.search.documents) < len(self.store.catalogue.products):
            if time.monotonic() > deadline:
                raise RuntimeError("the search index did not take in the catalogue")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        await self.bus.stop()
        await asyncio.gather(*(server.stop() for server in [*self.servers.values(), self.control]))
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
