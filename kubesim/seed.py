"""The seed: namespace `polyshop` with the eight PolyShop services, each with a revision history.

Seven run as Deployments `<svc>-service`; `payment` runs as an Argo Rollout (canary 5 → 20 → 50 → 100 with
pauses): a basic, replica-based canary by default (no `trafficRouting`: the split of ready pods is the split of
traffic), or with `traffic_routing=True` a canary whose traffic an NGINX ingress splits by weight. Each was first deployed at the previous version (revision 1, now scaled to zero) and then updated to the
current one (revision 2), so `kubectl rollout undo` has somewhere to go. The history is produced by the simulated
controllers themselves, run on a virtual clock, so the seed is exactly what they would have left behind.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Callable

from .meta import Obj

SERVICES = ("auth", "product", "inventory", "order", "payment", "notification", "search", "gateway")
CANARY_SERVICES = ("payment",)
NAMESPACE = "polyshop"
REGISTRY = "registry.polyshop.example"
VERSION = "1.3.0"
PREVIOUS_VERSION = "1.2.9"
DAY = 86400.0

CANARY_STEPS: list[Obj] = [
    {"setWeight": 5}, {"pause": {"duration": "5m"}},
    {"setWeight": 20}, {"pause": {"duration": "5m"}},
    {"setWeight": 50}, {"pause": {"duration": "5m"}},
    {"setWeight": 100},
]


def workload_name(service: str) -> str:
    """'order' or 'order-service' → 'order-service'."""
    return service if service.endswith("-service") else f"{service}-service"


def image(service: str, version: str, registry: str = REGISTRY) -> str:
    return f"{registry}/{workload_name(service)}:{version}"


def labels(service: str, version: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": workload_name(service),
        "app.kubernetes.io/part-of": "polyshop",
        "app.kubernetes.io/version": version,
    }


def selector(service: str) -> Obj:
    return {"matchLabels": {"app.kubernetes.io/name": workload_name(service), "app.kubernetes.io/part-of": "polyshop"}}


def pod_template(service: str, version: str, registry: str = REGISTRY) -> Obj:
    name = workload_name(service)
    return {
        "metadata": {"labels": labels(service, version),
                     "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8080"}},
        "spec": {
            "containers": [{
                "name": name,
                "image": image(service, version, registry),
                "ports": [{"name": "http", "containerPort": 8080}],
                "env": [{"name": "POLYSHOP_SERVICE", "value": service}],
                "readinessProbe": {"httpGet": {"path": "/health/ready", "port": "http"},
                                   "initialDelaySeconds": 5, "periodSeconds": 10},
                "livenessProbe": {"httpGet": {"path": "/health/live", "port": "http"},
                                  "initialDelaySeconds": 15, "periodSeconds": 20},
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
            }],
            "terminationGracePeriodSeconds": 30,
        },
    }


def deployment(service: str, version: str, namespace: str = NAMESPACE, registry: str = REGISTRY) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": workload_name(service), "namespace": namespace, "labels": labels(service, version)},
        "spec": {
            "replicas": 2,
            "selector": selector(service),
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "template": pod_template(service, version, registry),
        },
    }


def traffic_routing(service: str) -> Obj:
    """The canary fields of a traffic-routed Rollout: the two Services and the NGINX ingress that splits them."""
    name = workload_name(service)
    return {"canaryService": f"{name}-canary", "stableService": name, "trafficRouting": {"nginx": {"stableIngress": name}}}


def rollout(service: str, version: str, namespace: str = NAMESPACE, registry: str = REGISTRY,
            routed: bool = False) -> Obj:
    name = workload_name(service)
    canary: Obj = {**(traffic_routing(service) if routed else {}), "steps": [dict(step) for step in CANARY_STEPS]}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": namespace, "labels": labels(service, version)},
        "spec": {
            "replicas": 2,
            "selector": selector(service),
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "strategy": {"canary": canary},
            "template": pod_template(service, version, registry),
        },
    }


def namespace_object(name: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def seed(world: Any, namespace: str = NAMESPACE, registry: str = REGISTRY, version: str = VERSION,
         previous: str = PREVIOUS_VERSION, traffic_routing: bool = False) -> None:
    """Write the seed into an empty world (see KubeSimulator): history first, 7 and 2 days ago. `traffic_routing`:
    the canary Rollouts split their traffic with an NGINX ingress (else by their ready pods)."""
    cluster = world.cluster
    cluster.recorder.enabled = False
    try:
        cluster.clock.offset = -30 * DAY
        for ns in ("default", "kube-system", namespace):
            cluster.store.create("namespaces", namespace_object(ns), timestamp=cluster.clock.now())

        def first() -> None:
            for service in SERVICES:
                if service in CANARY_SERVICES:
                    world.create("rollouts", rollout(service, previous, namespace, registry, traffic_routing))
                else:
                    world.create("deployments", deployment(service, previous, namespace, registry))

        def update() -> None:
            for service in SERVICES:
                kind = "rollouts" if service in CANARY_SERVICES else "deployments"
                world.change_spec(kind, namespace, workload_name(service), _to_version(service, version, registry))

        for offset, step in ((-7 * DAY, first), (-2 * DAY, update)):
            cluster.clock.offset = offset
            cluster.scheduler.run_instantly(step)
    finally:
        cluster.clock.offset = 0.0
        cluster.recorder.enabled = True
    world.forget_timing()


def _to_version(service: str, version: str, registry: str) -> Callable[[Obj], None]:
    def change(obj: Obj) -> None:
        obj["metadata"]["labels"]["app.kubernetes.io/version"] = version
        template = obj["spec"]["template"]
        template["metadata"]["labels"]["app.kubernetes.io/version"] = version
        template["spec"]["containers"][0]["image"] = image(service, version, registry)

    return change
