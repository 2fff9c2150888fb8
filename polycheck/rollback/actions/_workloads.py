"""What the Kubernetes and Argo actions share: the previous revision of a workload and its pod template."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from polycheck.clients.kube import revision_of, selector_of
from polycheck.rollback.actions.protocol import RollbackActionError

if TYPE_CHECKING:
    from polycheck.clients.kube import Kube


def previous_replicaset(kube: Kube, workload: dict[str, Any]) -> dict[str, Any]:
    current = revision_of(workload)
    older = [rs for rs in kube.replicasets(selector_of(workload)) if 0 < revision_of(rs) < current]
    if not older:
        raise RollbackActionError(f"{workload['metadata']['name']}: no previous revision to roll back to (current revision {current})")
    return max(older, key=revision_of)


def clean_template(rs: dict[str, Any]) -> dict[str, Any]:
    template = copy.deepcopy(rs["spec"]["template"])
    labels = template.get("metadata", {}).get("labels") or {}
    for key in ("pod-template-hash", "rollouts-pod-template-hash"):
        labels.pop(key, None)
    return template


def images(template: dict[str, Any]) -> str:
    return ", ".join(c.get("image", "?") for c in template.get("spec", {}).get("containers", []))
