"""A simulated database connection pool: every business request of a service with a database holds a
connection while it runs, and `db_pool_connections_in_use` reports how many are checked out.

The `db_saturation` fault stands for runaway queries holding `connections` of the pool: the gauge
reaches the pool's size and requests wait for a connection, then fail with 503.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from .context import ServiceContext
from .telemetry import DB_POOL_SIZE

ACQUIRE_TIMEOUT_SECONDS = 0.5
DB_PATH_PREFIXES = ("/api/", "/internal/")


class PoolExhausted(Exception):
    """No connection became free within the acquire timeout."""


class DbPool:
    """A pool of `size` connections, some of them possibly held by the `db_saturation` fault."""

    def __init__(self, ctx: ServiceContext, size: int = DB_POOL_SIZE) -> None:
        self.ctx, self.size = ctx, size
        self.active = 0
        if ctx.metrics.db_in_use is not None:
            ctx.metrics.db_in_use.labels(ctx.name).set_function(lambda: float(self.in_use()))

    def leaked(self) -> int:
        fault = self.ctx.faults.get(self.ctx.name, "db_saturation")
        return min(self.size, fault["connections"] if fault else 0)

    def in_use(self) -> int:
        return min(self.size, self.active + self.leaked())

    async def acquire(self, timeout: float = ACQUIRE_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while self.active + self.leaked() >= self.size:
            if time.monotonic() >= deadline:
                raise PoolExhausted()
            await asyncio.sleep(0.01)
        self.active += 1

    def release(self) -> None:
        self.active -= 1


class DbPoolMiddleware:
    """ASGI middleware: hold a pool connection for the duration of each business request."""

    def __init__(self, app: Any, pool: DbPool) -> None:
        self.app, self.pool = app, pool

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(DB_PATH_PREFIXES):
            await self.app(scope, receive, send)
            return
        try:
            await self.pool.acquire()
        except PoolExhausted:
            body = json.dumps(
                {"error": "db_pool_exhausted", "service": self.pool.ctx.name, "detail": "no database connection free"}
            ).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.pool.release()
