"""A simulated Redis cache with TTLs; reading an entry past its TTL is a `redis_ttl_violations_total`.

Healthy, an expired entry is evicted on read (a miss). The `ttl_violations` fault stands for a broken
expiry: entries are written with a TTL of `ttl_seconds` that is never enforced, so every read of one
that has outlived it is served stale and counted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from .context import ServiceContext


@dataclass
class _Entry:
    value: Any
    expires_at: float


class TtlCache:
    """One service's cache; keys are strings, values any JSON-able data."""

    def __init__(self, ctx: ServiceContext, clock: Callable[[], float] = time.monotonic) -> None:
        self.ctx, self.clock = ctx, clock
        self._entries: dict[str, _Entry] = {}

    def _fault(self) -> dict[str, Any] | None:
        return self.ctx.faults.get(self.ctx.name, "ttl_violations")

    def get(self, key: str) -> Any | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self.clock() < entry.expires_at:
            return entry.value
        if self._fault() is None:
            del self._entries[key]
            return None
        if self.ctx.metrics.ttl_violations is not None:
            self.ctx.metrics.ttl_violations.labels(self.ctx.name).inc()
        return entry.value

    def set(self, key: str, value: Any, ttl: float) -> None:
        fault = self._fault()
        self._entries[key] = _Entry(value, self.clock() + (fault["ttl_seconds"] if fault else ttl))

    def get_or_load(self, key: str, ttl: float, load: Callable[[], Any]) -> Any:
        """The cached value, or `load()` stored for `ttl` seconds."""
        value = self.get(key)
        if value is None:
            value = load()
            self.set(key, value, ttl)
        return value
