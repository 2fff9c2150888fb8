"""The business endpoints of each local PolyShop service (polyshop-api.md)."""

from __future__ import annotations

from typing import Callable

from starlette.routing import Route

from ..context import ServiceContext
from . import auth, inventory, notification, order, payment, product, search

RouteFactory = Callable[[ServiceContext], list[Route]]

BUSINESS_ROUTES: dict[str, RouteFactory] = {
    "auth": auth.routes,
    "product": product.routes,
    "inventory": inventory.routes,
    "order": order.routes,
    "payment": payment.routes,
    "notification": notification.routes,
    "search": search.routes,
}
