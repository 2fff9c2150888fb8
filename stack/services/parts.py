"""What one local service contributes to the stack besides its probes: routes, consumers, workers."""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Awaitable, Callable

from starlette.routing import Route

from ..context import ServiceContext
from ..domain import Store
from ..events import EventBus, Handler


@dataclass
class ServiceParts:
    """One service's HTTP routes, the topics it consumes (topic -> handler) and its background workers."""

    routes: list[Route]
    subscriptions: dict[str, Handler] = field(default_factory=dict)
    paused: Callable[[], bool] | None = None  # its consumers stop while this holds (besides the 'down' fault)
    workers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


def store_of(ctx: ServiceContext) -> Store:
    """The stack's data; a service touches only its own attribute of it."""
    store: Store = ctx.shared["store"]
    return store


def bus_of(ctx: ServiceContext) -> EventBus:
    bus: EventBus = ctx.shared["bus"]
    return bus
