"""An in-process event bus with Kafka-like semantics, so that the moves after a payment are asynchronous.

Topics (`orders`, `payments`, `inventory`, `products`, `notifications`) are consumed by consumer groups
named after the consuming Deployment (`inventory-service`). Every group sees every event of its topic,
in publish order, each after a delivery delay of 50-300 ms. Delivery is at least once: a handler that
raises is retried, so handlers are idempotent. The backlog feeds `kafka_consumergroup_lag`, failures
`kafka_consumer_errors_total`; the faults `consumer_lag` and `consumer_errors` act here.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from collections.abc import Awaitable, Callable

from .middleware import TraceContext

if TYPE_CHECKING:
    from .context import ServiceContext

log = logging.getLogger("stack.events")

DELIVERY_DELAY_SECONDS = (0.05, 0.3)
POLL_INTERVAL_SECONDS = 0.5  # an idle consumer polls the broker this often
RETRY_BACKOFF_SECONDS = 0.2
MAX_ATTEMPTS = 20  # then the event goes to the dead-letter list


@dataclass(frozen=True)
class Event:
    """One message on a topic; `trace` continues the request that caused it."""

    id: str
    topic: str
    type: str
    key: str
    data: dict[str, Any]
    published_at: float
    traceparent: str
    request_id: str

    def trace(self) -> TraceContext:
        """A new span of the trace that published the event."""
        return TraceContext.continue_from(self.traceparent, self.request_id)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "topic": self.topic, "type": self.type, "key": self.key, "data": self.data}


Handler = Callable[[Event], Awaitable[None]]


@dataclass
class Subscription:
    """A consumer group's position on one topic: the events it has not processed yet."""

    ctx: ServiceContext
    topic: str
    handler: Handler
    paused: Callable[[], bool]
    backlog: deque[tuple[float, Event]] = field(default_factory=deque)  # (visible at, loop time; event)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    processed: int = 0
    errors: int = 0
    dead_letters: list[Event] = field(default_factory=list)
    _error_ticks: int = 0

    @property
    def group(self) -> str:
        return self.ctx.spec.deployment

    def oldest_pending_published_at(self) -> float | None:
        return self.backlog[0][1].published_at if self.backlog else None

    def injected_lag(self) -> float:
        """Extra lag from the `consumer_lag` fault: `lag` messages, growing by `growth_per_second`."""
        fault = self.ctx.faults.get(self.ctx.name, "consumer_lag")
        if not fault or fault.get("topic") not in (None, self.topic):
            return 0.0
        return fault["lag"] + fault["growth_per_second"] * max(0.0, time.time() - fault["set_at"])

    def lag(self) -> float:
        return len(self.backlog) + self.injected_lag()

    def failing(self) -> bool:
        """True when the `consumer_errors` fault makes this poll or delivery fail."""
        fault = self.ctx.faults.get(self.ctx.name, "consumer_errors")
        if not fault or fault.get("topic") not in (None, self.topic):
            return False
        before = self._error_ticks
        self._error_ticks += 1
        return int(self._error_ticks * fault["ratio"]) > int(before * fault["ratio"])

    def record_error(self) -> None:
        self.errors += 1
        if self.ctx.metrics.consumer_errors is not None:
            self.ctx.metrics.consumer_errors.labels(self.ctx.name, self.topic).inc()

    def describe(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "topic": self.topic,
            "pending": len(self.backlog),
            "lag": self.lag(),
            "processed": self.processed,
            "errors": self.errors,
            "dead_letters": len(self.dead_letters),
        }


class EventBus:
    """Topics, their consumer groups, and one consuming task per subscription."""

    def __init__(self, delay: tuple[float, float] = DELIVERY_DELAY_SECONDS, seed: int | None = None) -> None:
        self.delay = delay
        self.rng = random.Random(seed)
        self.subscriptions: list[Subscription] = []
        self.published: dict[str, int] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def subscribe(
        self, ctx: ServiceContext, topic: str, handler: Handler, paused: Callable[[], bool] | None = None
    ) -> Subscription:
        """Add the service's consumer group to a topic; its lag gauge reads the backlog."""
        is_paused = paused or (lambda: False)
        sub = Subscription(
            ctx, topic, handler, paused=lambda: ctx.faults.get(ctx.name, "down") is not None or is_paused()
        )
        self.subscriptions.append(sub)
        if ctx.metrics.consumer_lag is not None:
            ctx.metrics.consumer_lag.labels(sub.group, topic).set_function(sub.lag)
        return sub

    def subscription(self, service: str, topic: str) -> Subscription | None:
        return next((s for s in self.subscriptions if s.ctx.name == service and s.topic == topic), None)

    def publish(self, topic: str, type_: str, key: str, data: dict[str, Any], trace: TraceContext) -> Event:
        """Append an event to a topic; each consumer group gets it after its own delivery delay."""
        event = Event(
            id=f"evt_{secrets.token_hex(8)}",
            topic=topic,
            type=type_,
            key=key,
            data=data,
            published_at=time.time(),
            traceparent=trace.traceparent,
            request_id=trace.request_id,
        )
        self.published[topic] = self.published.get(topic, 0) + 1
        now = asyncio.get_running_loop().time()
        for sub in self.subscriptions:
            if sub.topic == topic:
                previous = sub.backlog[-1][0] if sub.backlog else now
                sub.backlog.append((max(previous, now + self.rng.uniform(*self.delay)), event))
                sub.wakeup.set()
        return event

    def pending(self) -> int:
        """Events published and not yet processed, over all consumer groups."""
        return sum(len(sub.backlog) for sub in self.subscriptions)

    def describe(self) -> dict[str, Any]:
        return {
            "pending": self.pending(),
            "published": dict(self.published),
            "subscriptions": [sub.describe() for sub in self.subscriptions],
        }

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._consume(sub)) for sub in self.subscriptions]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _consume(self, sub: Subscription) -> None:
        loop = asyncio.get_running_loop()
        attempts = 0
        while True:
            if not sub.backlog or sub.paused():
                sub.wakeup.clear()
                try:
                    await asyncio.wait_for(sub.wakeup.wait(), POLL_INTERVAL_SECONDS)
                except TimeoutError:
                    if sub.failing():  # a failing consumer fails its idle polls too
                        sub.record_error()
                if sub.paused():
                    await asyncio.sleep(POLL_INTERVAL_SECONDS)
                continue
            visible_at, event = sub.backlog[0]
            if visible_at > loop.time():
                await asyncio.sleep(visible_at - loop.time())
                continue
            if sub.failing():
                sub.record_error()
                await asyncio.sleep(RETRY_BACKOFF_SECONDS)
                continue
            attempts += 1
            try:
                await sub.handler(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s failed to process %s (attempt %d)", sub.group, event.type, attempts)
                sub.record_error()
                if attempts < MAX_ATTEMPTS:
                    await asyncio.sleep(RETRY_BACKOFF_SECONDS)
                    continue
                sub.dead_letters.append(event)
            sub.backlog.popleft()
            sub.processed += 1
            attempts = 0
