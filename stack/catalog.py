"""What the local PolyShop stack runs: the eight services, their dependencies and metric families."""

from __future__ import annotations

from dataclasses import dataclass, field

STACK_VERSION = "1.3.0"

COMMON_FAMILIES = ("http_requests_total", "http_request_duration_seconds")
DB_FAMILIES = ("db_pool_connections_in_use", "db_pool_connections_max")
KAFKA_FAMILIES = ("kafka_consumergroup_lag", "kafka_consumer_errors_total")
REDIS_FAMILIES = ("redis_ttl_violations_total",)


@dataclass(frozen=True)
class ServiceSpec:
    """One PolyShop service as the local stack runs it."""

    name: str
    dependencies: tuple[str, ...]
    families: tuple[str, ...] = field(default=COMMON_FAMILIES)
    consumes: tuple[str, ...] = ()
    canary: bool = False  # released as an Argo Rollout: requests are labelled with the pod hash that served them

    @property
    def deployment(self) -> str:
        return f"{self.name}-service"


SERVICES: dict[str, ServiceSpec] = {
    spec.name: spec
    for spec in (
        ServiceSpec("auth", ("postgres", "redis"), COMMON_FAMILIES + DB_FAMILIES + REDIS_FAMILIES),
        ServiceSpec("product", ("postgres", "redis"), COMMON_FAMILIES + DB_FAMILIES + REDIS_FAMILIES),
        ServiceSpec(
            "inventory",
            ("postgres", "kafka"),
            COMMON_FAMILIES + DB_FAMILIES + KAFKA_FAMILIES,
            consumes=("orders",),
        ),
        ServiceSpec(
            "order",
            ("postgres", "kafka"),
            COMMON_FAMILIES + DB_FAMILIES + KAFKA_FAMILIES,
            consumes=("payments", "inventory"),
        ),
        ServiceSpec("payment", ("postgres", "kafka", "card-provider"), COMMON_FAMILIES + DB_FAMILIES, canary=True),
        ServiceSpec(
            "notification", ("kafka", "smtp"), COMMON_FAMILIES + KAFKA_FAMILIES, consumes=("orders", "notifications")
        ),
        ServiceSpec(
            "search",
            ("search-index", "kafka", "redis"),
            COMMON_FAMILIES + KAFKA_FAMILIES + REDIS_FAMILIES,
            consumes=("products",),
        ),
        ServiceSpec("gateway", ("routes",), COMMON_FAMILIES),
    )
}

# Path prefixes the gateway routes to each service (polyshop-api.md, Gateway).
GATEWAY_ROUTES: tuple[tuple[str, str], ...] = (
    ("/api/auth/", "auth"),
    ("/api/products", "product"),
    ("/api/inventory/", "inventory"),
    ("/api/orders", "order"),
    ("/api/payments", "payment"),
    ("/api/notifications/", "notification"),
    ("/api/search", "search"),
)
