"""Server-side printing: the meta.k8s.io/v1 `Table` that `kubectl get` asks for, with the columns the real
API server prints (pkg/printers/internalversion) and, for Rollouts, the CRD's additionalPrinterColumns.
"""

from __future__ import annotations

import time
from typing import Any
from collections.abc import Callable

from .meta import Obj, ResourceType, human_duration, parse_time, selector_string

Column = tuple[str, str, str, int]  # name, type, format, priority

_NAME: Column = ("Name", "string", "name", 0)
_AGE: Column = ("Age", "string", "", 0)


def _age(ts: str | None, now: float) -> str:
    if not ts:
        return "<unknown>"
    return human_duration(now - parse_time(ts))


def _containers(template_spec: Obj) -> tuple[str, str]:
    containers = template_spec.get("containers") or []
    return ",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers)


def _deployment(d: Obj, now: float) -> list[Any]:
    spec, status = d.get("spec") or {}, d.get("status") or {}
    names, images = _containers((spec.get("template") or {}).get("spec") or {})
    return [d["metadata"]["name"], f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
            status.get("updatedReplicas", 0), status.get("availableReplicas", 0),
            _age(d["metadata"].get("creationTimestamp"), now), names, images,
            selector_string(spec.get("selector") or {})]


def _replicaset(rs: Obj, now: float) -> list[Any]:
    spec, status = rs.get("spec") or {}, rs.get("status") or {}
    names, images = _containers((spec.get("template") or {}).get("spec") or {})
    return [rs["metadata"]["name"], spec.get("replicas", 1), status.get("replicas", 0),
            status.get("readyReplicas", 0), _age(rs["metadata"].get("creationTimestamp"), now), names, images,
            selector_string(spec.get("selector") or {})]


def pod_status_reason(pod: Obj) -> tuple[str, int, int, str]:
    """printPod: (STATUS, ready containers, restarts, restarts text) as `kubectl get pods` shows them."""
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase", "Pending")
    restarts = ready = 0
    last_restart: str | None = None
    has_running = False
    for cs in reversed(status.get("containerStatuses") or []):
        restarts += cs.get("restartCount", 0)
        finished = ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
        if finished and (last_restart is None or finished > last_restart):
            last_restart = finished
        state = cs.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif (state.get("terminated") or {}).get("reason"):
            reason = state["terminated"]["reason"]
        elif cs.get("ready") and "running" in state:
            has_running = True
            ready += 1
    if reason == "Completed" and has_running:
        reason = "Running"
    if pod["metadata"].get("deletionTimestamp") and status.get("phase") not in ("Succeeded", "Failed"):
        reason = "Terminating"
    text = str(restarts)
    if restarts and last_restart:
        text = f"{restarts} ({human_duration(time.time() - parse_time(last_restart))} ago)"
    return reason, ready, restarts, text


def _pod(pod: Obj, now: float) -> list[Any]:
    reason, ready, _, restarts = pod_status_reason(pod)
    status = pod.get("status") or {}
    ips = status.get("podIPs") or []
    return [pod["metadata"]["name"], f"{ready}/{len(pod['spec'].get('containers') or [])}", reason, restarts,
            _age(pod["metadata"].get("creationTimestamp"), now), ips[0]["ip"] if ips else "<none>",
            pod["spec"].get("nodeName") or "<none>", status.get("nominatedNodeName") or "<none>", "<none>"]


def _namespace(ns: Obj, now: float) -> list[Any]:
    return [ns["metadata"]["name"], (ns.get("status") or {}).get("phase", "Active"),
            _age(ns["metadata"].get("creationTimestamp"), now)]


def _event(ev: Obj, now: float) -> list[Any]:
    involved = ev.get("involvedObject") or {}
    source = ev.get("source") or {}
    src = ", ".join(x for x in (source.get("component"), source.get("host")) if x)
    return [_age(ev.get("lastTimestamp"), now), ev.get("type", ""), ev.get("reason", ""),
            f"{involved.get('kind', '').lower()}/{involved.get('name', '')}", involved.get("fieldPath", ""), src,
            (ev.get("message") or "").strip(), _age(ev.get("firstTimestamp"), now), ev.get("count", 1),
            ev["metadata"]["name"]]


def _rollout(ro: Obj, now: float) -> list[Any]:
    spec, status = ro.get("spec") or {}, ro.get("status") or {}
    return [ro["metadata"]["name"], spec.get("replicas"), status.get("replicas"), status.get("updatedReplicas"),
            status.get("availableReplicas"), _age(ro["metadata"].get("creationTimestamp"), now)]


_WIDE_WORKLOAD: list[Column] = [("Containers", "string", "", 1), ("Images", "string", "", 1),
                                ("Selector", "string", "", 1)]
PRINTERS: dict[str, tuple[list[Column], Callable[[Obj, float], list[Any]]]] = {
    "deployments": ([_NAME, ("Ready", "string", "", 0), ("Up-to-date", "integer", "", 0),
                     ("Available", "integer", "", 0), _AGE] + _WIDE_WORKLOAD, _deployment),
    "replicasets": ([_NAME, ("Desired", "integer", "", 0), ("Current", "integer", "", 0),
                     ("Ready", "integer", "", 0), _AGE] + _WIDE_WORKLOAD, _replicaset),
    "pods": ([_NAME, ("Ready", "string", "", 0), ("Status", "string", "", 0), ("Restarts", "string", "", 0), _AGE,
              ("IP", "string", "", 1), ("Node", "string", "", 1), ("Nominated Node", "string", "", 1),
              ("Readiness Gates", "string", "", 1)], _pod),
    "namespaces": ([_NAME, ("Status", "string", "", 0), _AGE], _namespace),
    "events": ([("Last Seen", "string", "", 0), ("Type", "string", "", 0), ("Reason", "string", "", 0),
                ("Object", "string", "", 0), ("Subobject", "string", "", 1), ("Source", "string", "", 1),
                ("Message", "string", "", 0), ("First Seen", "string", "", 1), ("Count", "integer", "", 1),
                ("Name", "string", "", 1)], _event),
    "rollouts": ([_NAME, ("Desired", "integer", "", 0), ("Current", "integer", "", 0),
                  ("Up-to-date", "integer", "", 0), ("Available", "integer", "", 0), ("Age", "date", "", 0)],
                 _rollout),
}

_DESCRIPTIONS = {
    "Name": "Name must be unique within a namespace. Is required when creating resources, although some resources "
            "may allow a client to request the generation of an appropriate name automatically. Name is primarily "
            "intended for creation idempotence and configuration definition. Cannot be updated.",
    "Age": "CreationTimestamp is a timestamp representing the server time when this object was created.",
}


def partial_metadata(obj: Obj) -> Obj:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}


def to_table(rt: ResourceType, objs: list[Obj], list_meta: Obj, include_object: str = "PartialObjectMetadata",
             *, with_columns: bool = True) -> Obj:
    columns, row_of = PRINTERS[rt.plural]
    now = time.time()
    rows = []
    for obj in objs:
        row: Obj = {"cells": row_of(obj, now)}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = partial_metadata(obj)
        rows.append(row)
    table: Obj = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta}
    table["columnDefinitions"] = [
        {"name": name, "type": type_, "format": fmt, "description": _DESCRIPTIONS.get(name, ""), "priority": prio}
        for name, type_, fmt, prio in columns
    ] if with_columns else []
    table["rows"] = rows
    return table
