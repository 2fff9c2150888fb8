"""Defaulting and validation, the way the API server fills in and checks Deployments, Rollouts and pod templates."""

from __future__ import annotations

import re
from typing import Any

from .meta import ApiError, Obj, ResourceType, prune_nulls

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _default_probe(probe: Obj) -> None:
    probe.setdefault("timeoutSeconds", 1)
    probe.setdefault("periodSeconds", 10)
    probe.setdefault("successThreshold", 1)
    probe.setdefault("failureThreshold", 3)
    if isinstance(probe.get("httpGet"), dict):
        probe["httpGet"].setdefault("scheme", "HTTP")


def _image_tag(image: str) -> str:
    name = image.rsplit("/", 1)[-1]
    if "@" in name:
        return "@digest"
    return name.split(":", 1)[1] if ":" in name else ""


def default_container(c: Obj) -> None:
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    tag = _image_tag(c.get("image") or "")
    c.setdefault("imagePullPolicy", "Always" if tag in ("", "latest") else "IfNotPresent")
    c.setdefault("resources", {})
    for port in c.get("ports") or []:
        port.setdefault("protocol", "TCP")
    for key in ("readinessProbe", "livenessProbe", "startupProbe"):
        if isinstance(c.get(key), dict):
            _default_probe(c[key])


def default_pod_spec(spec: Obj) -> None:
    """SetDefaults_PodSpec and friends (the subset the PolyShop templates touch)."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        if isinstance(c, dict):
            default_container(c)


def default_template(template: Obj) -> None:
    template.setdefault("metadata", {})
    template["metadata"].pop("creationTimestamp", None)
    default_pod_spec(template.setdefault("spec", {}))


def default_deployment(obj: Obj) -> Obj:
    obj = prune_nulls(obj)
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    default_template(spec.setdefault("template", {}))
    return obj


def default_rollout(obj: Obj) -> Obj:
    """Argo Rollouts' CRD has no server-side defaults but the pod template is stored as the client sent it;
    the controller treats missing fields with its own defaults (replicas 1, progressDeadlineSeconds 600)."""
    obj = prune_nulls(obj)
    template = obj.setdefault("spec", {}).get("template")
    if isinstance(template, dict):
        template.get("metadata", {}).pop("creationTimestamp", None)
    return obj


def _container_causes(spec: Obj, path: str) -> list[tuple[str, str, str]]:
    causes: list[tuple[str, str, str]] = []
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        return [(f"{path}.containers", "FieldValueRequired", "Required value")]
    seen: set[str] = set()
    for i, c in enumerate(containers):
        where = f"{path}.containers[{i}]"
        if not isinstance(c, dict):
            causes.append((where, "FieldValueInvalid", "Invalid value: must be an object"))
            continue
        name = c.get("name")
        if not name:
            causes.append((f"{where}.name", "FieldValueRequired", "Required value"))
        elif not isinstance(name, str) or not _DNS_LABEL.match(name):
            causes.append((f"{where}.name", "FieldValueInvalid", f'Invalid value: "{name}": a lowercase RFC 1123 label '
                           "must consist of lower case alphanumeric characters or '-'"))
        elif name in seen:
            causes.append((f"{where}.name", "FieldValueDuplicate", f'Duplicate value: "{name}"'))
        else:
            seen.add(name)
        if not c.get("image"):
            causes.append((f"{where}.image", "FieldValueRequired", "Required value"))
    return causes


def validate_workload(rt: ResourceType, obj: Obj, old: Obj | None = None) -> None:
    """The checks a Deployment (or Rollout) must pass; raises 422 Invalid naming every offending field."""
    meta = obj.get("metadata") or {}
    name = meta.get("name") or ""
    causes: list[tuple[str, str, str]] = []
    if not name:
        causes.append(("metadata.name", "FieldValueRequired", "Required value: name or generateName is required"))
    elif not _DNS_SUBDOMAIN.match(name) or len(name) > 253:
        causes.append(("metadata.name", "FieldValueInvalid", f'Invalid value: "{name}": a lowercase RFC 1123 '
                       "subdomain must consist of lower case alphanumeric characters, '-' or '.'"))
    spec = obj.get("spec") or {}
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        causes.append(("spec.replicas", "FieldValueInvalid",
                       f"Invalid value: {replicas!r}: must be greater than or equal to 0"))
    selector = spec.get("selector")
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not isinstance(selector, dict) or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        causes.append(("spec.selector", "FieldValueRequired", "Required value"))
    else:
        match = selector.get("matchLabels") or {}
        if any(labels.get(k) != v for k, v in match.items()):
            causes.append(("spec.template.metadata.labels", "FieldValueInvalid",
                           f"Invalid value: {labels!r}: `selector` does not match template `labels`"))
        if old is not None and old.get("spec", {}).get("selector") != selector:
            causes.append(("spec.selector", "FieldValueInvalid",
                           f"Invalid value: {selector!r}: field is immutable"))
    causes += _container_causes(template.get("spec") or {}, "spec.template.spec")
    if rt.plural == "deployments":
        strategy = spec.get("strategy") or {}
        kind = strategy.get("type")
        if kind not in ("RollingUpdate", "Recreate"):
            causes.append(("spec.strategy.type", "FieldValueNotSupported",
                           f'Unsupported value: "{kind}": supported values: "Recreate", "RollingUpdate"'))
        elif kind == "Recreate" and strategy.get("rollingUpdate") is not None:
            causes.append(("spec.strategy.rollingUpdate", "FieldValueForbidden",
                           "Forbidden: may not be specified when strategy `type` is 'Recreate'"))
        elif kind == "RollingUpdate":
            rolling = strategy.get("rollingUpdate") or {}
            if scaled(rolling.get("maxSurge"), 100, True) == 0 and scaled(rolling.get("maxUnavailable"), 100, False) == 0:
                causes.append(("spec.strategy.rollingUpdate.maxUnavailable", "FieldValueInvalid",
                               "Invalid value: 0: may not be 0 when `maxSurge` is 0"))
        deadline, min_ready = spec.get("progressDeadlineSeconds"), spec.get("minReadySeconds", 0)
        if isinstance(deadline, int) and isinstance(min_ready, int) and deadline <= min_ready:
            causes.append(("spec.progressDeadlineSeconds", "FieldValueInvalid",
                           f"Invalid value: {deadline}: must be greater than minReadySeconds"))
    if causes:
        raise ApiError.invalid(rt, name, causes)


def scaled(value: Any, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        percent = int(text[:-1])
        exact = percent * total / 100
        return int(-(-percent * total // 100)) if round_up else int(exact)
    return int(text)
