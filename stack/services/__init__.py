"""The business side of each local PolyShop service (polyshop-api.md): routes, event consumers, workers."""

from __future__ import annotations

from collections.abc import Callable

from ..context import ServiceContext
from . import auth, inventory, notification, order, payment, product, search
from .parts import ServiceParts

ServiceBuilder = Callable[[ServiceContext], ServiceParts]

SERVICE_BUILDERS: dict[str, ServiceBuilder] = {
    "auth": auth.build,
    "product": product.build,
    "inventory": inventory.build,
    "order": order.build,
    "payment": payment.build,
    "notification": notification.build,
    "search": search.build,
}
