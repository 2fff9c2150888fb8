"""API machinery shared by the simulator: resource types, Status errors, timestamps, names and hashes."""

from __future__ import annotations

import copy
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, UTC
from typing import Any

Obj = dict[str, Any]

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
POD_TEMPLATE_HASH = "pod-template-hash"
ROLLOUT_REVISION = "rollout.argoproj.io/revision"
ROLLOUT_DESIRED_REPLICAS = "rollout.argoproj.io/desired-replicas"
ROLLOUT_POD_TEMPLATE_HASH = "rollouts-pod-template-hash"
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


@dataclass(frozen=True)
class ResourceType:
    """One REST resource as discovery lists it."""

    group: str
    version: str
    plural: str
    kind: str
    singular: str
    verbs: tuple[str, ...]
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """`deployments.apps`, `pods`: how Status messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def custom(self) -> bool:
        """Served like a CustomResourceDefinition (no strategic merge patch)."""
        return self.group in ("argoproj.io", "monitoring.coreos.com")


_RW = ("create", "get", "list", "patch", "update", "watch")
RESOURCES: dict[str, ResourceType] = {
    r.plural: r
    for r in [
        ResourceType("", "v1", "namespaces", "Namespace", "namespace", ("get", "list", "watch"), False, ("ns",)),
        ResourceType(
            "", "v1", "pods", "Pod", "pod", ("delete", "get", "list", "watch"), True, ("po",), ("all",),
            {"log": ("get",), "status": ("get",)},
        ),
        ResourceType("", "v1", "events", "Event", "event", ("get", "list", "watch"), True, ("ev",)),
        ResourceType(
            "apps", "v1", "deployments", "Deployment", "deployment", _RW, True, ("deploy",), ("all",),
            {"status": ("get", "patch", "update"), "scale": ("get", "patch", "update")},
        ),
        ResourceType(
            "apps", "v1", "replicasets", "ReplicaSet", "replicaset", ("get", "list", "watch"), True, ("rs",), ("all",),
            {"status": ("get",)},
        ),
        ResourceType(
            "argoproj.io", "v1alpha1", "rollouts", "Rollout", "rollout", _RW, True, ("ro",), (),
            {"status": ("get", "patch", "update"), "scale": ("get", "patch", "update")},
        ),
        # stored and served, with no controller: what a deploy of polycheck itself applies (deploy/)
        ResourceType("", "v1", "serviceaccounts", "ServiceAccount", "serviceaccount", _RW, True, ("sa",)),
        ResourceType("", "v1", "services", "Service", "service", _RW, True, ("svc",), ("all",)),
        ResourceType("", "v1", "configmaps", "ConfigMap", "configmap", _RW, True, ("cm",)),
        ResourceType("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", "persistentvolumeclaim",
                     _RW, True, ("pvc",)),
        ResourceType("batch", "v1", "cronjobs", "CronJob", "cronjob", _RW, True, ("cj",), ("all",)),
        ResourceType("rbac.authorization.k8s.io", "v1", "roles", "Role", "role", _RW, True),
        ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", "rolebinding", _RW, True),
        ResourceType("argoproj.io", "v1alpha1", "analysistemplates", "AnalysisTemplate", "analysistemplate",
                     _RW, True),
        ResourceType("coordination.k8s.io", "v1", "leases", "Lease", "lease", (*_RW, "delete"), True),
        ResourceType("monitoring.coreos.com", "v1", "prometheusrules", "PrometheusRule", "prometheusrule",
                     _RW, True, ("promrule",)),
        ResourceType("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", "networkpolicy", _RW, True, ("netpol",)),
    ]
}


class ApiError(Exception):
    """An error the API answers with a `Status` object."""

    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> Obj:
        body: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body

    @classmethod
    def not_found(cls, rt: ResourceType, name: str) -> ApiError:
        return cls(404, "NotFound", f'{rt.qualified} "{name}" not found', _details(rt, name))

    @classmethod
    def already_exists(cls, rt: ResourceType, name: str) -> ApiError:
        return cls(409, "AlreadyExists", f'{rt.qualified} "{name}" already exists', _details(rt, name))

    @classmethod
    def conflict(cls, rt: ResourceType, name: str) -> ApiError:
        message = (
            f'Operation cannot be fulfilled on {rt.qualified} "{name}": the object has been modified; '
            "please apply your changes to the latest version and try again"
        )
        return cls(409, "Conflict", message, _details(rt, name))

    @classmethod
    def invalid(cls, rt: ResourceType, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
        """causes: (field, reason e.g. FieldValueRequired, message e.g. 'Required value')."""
        group_kind = f"{rt.kind}.{rt.group}" if rt.group else rt.kind
        text = ", ".join(f"{f}: {m}" for f, _, m in causes)
        details = {
            "name": name,
            "group": rt.group,
            "kind": rt.kind,
            "causes": [{"reason": r, "message": m, "field": f} for f, r, m in causes],
        }
        if len(causes) > 1:
            text = "[" + text + "]"
        return cls(422, "Invalid", f'{group_kind} "{name}" is invalid: {text}', details)

    @classmethod
    def bad_request(cls, message: str) -> ApiError:
        return cls(400, "BadRequest", message)


def _details(rt: ResourceType, name: str) -> Obj:
    details: Obj = {"name": name, "kind": rt.plural}
    if rt.group:
        details["group"] = rt.group
    return details


def rfc3339(ts: float | None = None) -> str:
    """Second-precision UTC timestamp, as the API server writes metav1.Time."""
    return datetime.fromtimestamp(time.time() if ts is None else ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery duration.HumanDuration, used for AGE columns."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        rest = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if rest == 0 else f"{hours // 24 // 365}y{rest}d"
    return f"{hours // 24 // 365}y"


_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def safe_encode(text: str) -> str:
    """k8s.io/apimachinery rand.SafeEncodeString: no vowels, no confusable characters."""
    return "".join(_ALPHANUMS[ord(c) % len(_ALPHANUMS)] for c in text)


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def template_hash(template: Obj, collision_count: int = 0) -> str:
    """The pod-template-hash of a template (FNV-32a, safely encoded, like controller.ComputeHash)."""
    stripped = strip_hash_label(template)
    data = json.dumps(stripped, sort_keys=True, separators=(",", ":")).encode()
    if collision_count:
        data += str(collision_count).encode()
    return safe_encode(str(fnv32a(data)))


def strip_hash_label(template: Obj) -> Obj:
    """A copy of a pod template without the controller's hash labels."""
    out = copy.deepcopy(template)
    labels = out.get("metadata", {}).get("labels")
    if labels:
        labels.pop(POD_TEMPLATE_HASH, None)
        labels.pop(ROLLOUT_POD_TEMPLATE_HASH, None)
    return out


def templates_equal(a: Obj, b: Obj) -> bool:
    """EqualIgnoreHash: the same template once the hash label is gone (empty and absent are alike)."""
    return prune_empty(strip_hash_label(a)) == prune_empty(strip_hash_label(b))


def prune_empty(value: Any) -> Any:
    if isinstance(value, dict):
        pruned = {k: prune_empty(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [prune_empty(v) for v in value]
    return value


def prune_nulls(value: Any) -> Any:
    """Drop null fields, as decoding into typed API structs does."""
    if isinstance(value, dict):
        return {k: prune_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [prune_nulls(v) for v in value]
    return value


class Names:
    """Deterministic random names and UIDs (seeded), so runs are reproducible."""

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)

    def suffix(self, n: int = 5) -> str:
        return "".join(self._rng.choice(_ALPHANUMS) for _ in range(n))

    def uid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def hex(self, n: int) -> str:
        return "".join(self._rng.choice("0123456789abcdef") for _ in range(n))


def labels_of(obj: Obj) -> dict[str, str]:
    return obj.get("metadata", {}).get("labels") or {}


def annotations_of(obj: Obj) -> dict[str, str]:
    return obj.get("metadata", {}).get("annotations") or {}


def owner_uid(obj: Obj) -> str | None:
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("uid")
    return None


def owner_ref(owner: Obj) -> Obj:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def selector_string(label_selector: Obj) -> str:
    """metav1.LabelSelector → the selector string `kubectl` and status.selector use."""
    parts = [f"{k}={v}" for k, v in sorted((label_selector.get("matchLabels") or {}).items())]
    for expr in label_selector.get("matchExpressions") or []:
        op, key, values = expr["operator"], expr["key"], sorted(expr.get("values") or [])
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)
