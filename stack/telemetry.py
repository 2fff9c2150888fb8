"""Per-service Prometheus metrics, fed by real request counting and timing."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

from .catalog import DB_FAMILIES, KAFKA_FAMILIES, REDIS_FAMILIES, ServiceSpec

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DB_POOL_SIZE = 20
# what Prometheus's Kubernetes pod discovery relabels an Argo Rollout pod's hash to
POD_HASH_LABEL = "rollouts_pod_template_hash"

disable_created_metrics()


@dataclass
class ServiceMetrics:
    """The metric families one service exports, in a registry of its own."""

    spec: ServiceSpec
    registry: CollectorRegistry
    requests: Counter
    duration: Histogram
    db_in_use: Gauge | None = None
    db_max: Gauge | None = None
    consumer_lag: Gauge | None = None
    consumer_errors: Counter | None = None
    ttl_violations: Counter | None = None

    @classmethod
    def for_service(cls, spec: ServiceSpec) -> ServiceMetrics:
        registry = CollectorRegistry(auto_describe=True)
        metrics = cls(
            spec=spec,
            registry=registry,
            requests=Counter(
                "http_requests",
                "HTTP requests served.",
                ("service", "route", "method", "status") + ((POD_HASH_LABEL,) if spec.canary else ()),
                registry=registry,
            ),
            duration=Histogram(
                "http_request_duration_seconds",
                "Time to answer an HTTP request.",
                ("service", "route") + ((POD_HASH_LABEL,) if spec.canary else ()),  # as pod discovery relabels every series
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
        )
        if set(DB_FAMILIES) <= set(spec.families):
            metrics.db_in_use = Gauge(
                "db_pool_connections_in_use", "Database connections checked out.", ("service",), registry=registry
            )
            metrics.db_max = Gauge("db_pool_connections_max", "Database pool size.", ("service",), registry=registry)
            metrics.db_in_use.labels(spec.name).set(0)
            metrics.db_max.labels(spec.name).set(DB_POOL_SIZE)
        if set(KAFKA_FAMILIES) <= set(spec.families):
            metrics.consumer_lag = Gauge(
                "kafka_consumergroup_lag", "Messages the consumer group trails.", ("consumergroup", "topic"),
                registry=registry,
            )
            metrics.consumer_errors = Counter(
                "kafka_consumer_errors", "Consumer errors.", ("service", "topic"), registry=registry
            )
            for topic in spec.consumes:
                metrics.consumer_lag.labels(spec.deployment, topic).set(0)
                metrics.consumer_errors.labels(spec.name, topic)
        if set(REDIS_FAMILIES) <= set(spec.families):
            metrics.ttl_violations = Counter(
                "redis_ttl_violations", "Cache entries read past their TTL.", ("service",), registry=registry
            )
            metrics.ttl_violations.labels(spec.name)
        return metrics

    def observe(self, route: str, method: str, status: int, seconds: float, pod_hash: str = "") -> None:
        labels = (self.spec.name, route, method, str(status)) + ((pod_hash or "unknown",) if self.spec.canary else ())
        self.requests.labels(*labels).inc()
        self.duration.labels(self.spec.name, route, *labels[4:]).observe(seconds)

    def exposition(self, drop_family: str | None = None) -> bytes:
        """The text exposition, optionally without one family (a fault)."""
        return generate_latest(_Without(self.registry, drop_family) if drop_family else self.registry)


class _Without:
    """A view of a registry that leaves one metric family out."""

    def __init__(self, registry: CollectorRegistry, family: str) -> None:
        self.registry = registry
        self.family = family

    def collect(self):  # type: ignore[no-untyped-def]
        for metric in self.registry.collect():
            if self.family not in (metric.name, f"{metric.name}_total"):
                yield metric
