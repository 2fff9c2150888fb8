"""A simulated Redis cache with TTLs; reading an entry past its TTL is a `redis_ttl_violations_total`.

Healthy, an expired entry is evicted on read (a miss). The `ttl_violations` fault stands for broken
expiry: entries are judged by a TTL of `ttl_seconds` (default 0) that is never enforced, so each read
of an entry older than that is served stale and counted; the counter grows with traffic.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable

from .context import ServiceContext


@dataclass
class _Entry:
    value: Any
    written_at: float
    ttl: float


class TtlCache:
    """One service's cache; keys are strings, values any JSON-able data (None is never cached)."""

    def __init__(self, ctx: ServiceContext, clock: Callable[[], float] = time.monotonic) -> None:
        self.ctx, self.clock = ctx, clock
        self._entries: dict[str, _Entry] = {}

    def get(self, key: str) -> Any | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        fault = self.ctx.faults.get(self.ctx.name, "ttl_violations")
        ttl = fault["ttl_seconds"] if fault else entry.ttl
        if self.clock() - entry.written_at < ttl:
            return entry.value
        if fault is None:
            del self._entries[key]
            return None
        if self.ctx.metrics.ttl_violations is not None:
            self.ctx.metrics.ttl_violations.labels(self.ctx.name).inc()
        return entry.value

    def set(self, key: str, value: Any, ttl: float) -> None:
        if value is not None:
            self._entries[key] = _Entry(value, self.clock(), ttl)

    def get_or_load(self, key: str, ttl: float, load: Callable[[], Any]) -> Any:
        """The cached value, or `load()` stored for `ttl` seconds."""
        value = self.get(key)
        if value is None:
            value = load()
            self.set(key, value, ttl)
        return value
