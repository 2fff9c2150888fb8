"""What the Deployment controller and the Argo Rollouts controller both do with the ReplicaSets they own.

Both keep one ReplicaSet per pod template, named `<owner>-<pod-template-hash>` with the hash in its labels and its
selector, numbered by a revision annotation; both scale a ReplicaSet by writing its spec.replicas and their
desired-replicas annotations, record ScalingReplicaSet and let the ReplicaSet controller sync; both add up their
ReplicaSets' status, keep conditions the same way (deploymentutil.SetDeploymentCondition,
conditions.SetRolloutCondition) and time progress against progressDeadlineSeconds.

What differs is declared by each controller: its event source (COMPONENT), hash label (HASH_LABEL: `pod-template-hash`
or `rollouts-pod-template-hash`), revision annotation (REVISION), desired-replicas annotations and event texts.
"""

from __future__ import annotations

import copy

from .cluster import Cluster
from .meta import Obj, annotations_of, labels_of, owner_ref, rfc3339, template_hash, templates_equal
from .replicaset_controller import ReplicaSetController


def revision(rs: Obj, key: str) -> int:
    """The revision number in annotation `key` (0 when absent or not a number)."""
    value = annotations_of(rs).get(key, "0")
    return int(value) if value.isdigit() else 0


def status_sum(field: str, rses: list[Obj]) -> int:
    """The sum of one status field over ReplicaSets."""
    return sum((rs.get("status") or {}).get(field, 0) for rs in rses)


def replica_counts(rses: list[Obj], current: Obj | None) -> Obj:
    """An owner's replicas, updatedReplicas (the current ReplicaSet's), readyReplicas and availableReplicas."""
    return {
        "replicas": status_sum("replicas", rses),
        "updatedReplicas": status_sum("replicas", [current] if current else []),
        "readyReplicas": status_sum("readyReplicas", rses),
        "availableReplicas": status_sum("availableReplicas", rses),
    }


def omit_zero(status: Obj, keys: tuple[str, ...]) -> Obj:
    """The status without those of `keys` that are zero or empty (omitempty)."""
    return {k: v for k, v in status.items() if not (k in keys and not v)}


def set_condition(status: Obj, cond: Obj) -> bool:
    """Set a condition: the same status and reason keep the old one (and its message); the same status keeps its
    lastTransitionTime. True when something changed."""
    conditions = status.setdefault("conditions", [])
    current = next((c for c in conditions if c["type"] == cond["type"]), None)
    if current is not None and current["status"] == cond["status"] and current.get("reason") == cond.get("reason"):
        return False
    if current is not None and current["status"] == cond["status"]:
        cond["lastTransitionTime"] = current["lastTransitionTime"]
    status["conditions"] = [c for c in conditions if c["type"] != cond["type"]] + [cond]
    return True


def get_condition(status: Obj, type_: str) -> Obj | None:
    return next((c for c in status.get("conditions") or [] if c["type"] == type_), None)


class ReplicaSetOwner:
    """The ReplicaSet handling of a controller whose workloads own ReplicaSets (Deployment, Argo Rollout)."""

    COMPONENT = ""  # the source of its events
    HASH_LABEL = ""  # the pod-template-hash label of its ReplicaSets and their pods
    REVISION = ""  # the revision annotation of its ReplicaSets and workloads

    def __init__(self, cluster: Cluster, rs_controller: ReplicaSetController) -> None:
        self.c, self.rsc = cluster, rs_controller
        self._progress_at: dict[str, float] = {}  # workload uid -> monotonic time of its last recorded progress

    def forget(self) -> None:
        self._progress_at.clear()

    # -- what each controller says -------------------------------------------------------------

    def desired_annotations(self, owner: Obj) -> dict[str, str]:
        """The annotations a scaled ReplicaSet carries about its owner's size."""
        raise NotImplementedError

    def scaled_event(self, owner: Obj, rs: Obj, old: int, new: int) -> None:
        """Record the ScalingReplicaSet event of `rs` going from `old` to `new` replicas."""
        raise NotImplementedError

    def created_event(self, owner: Obj, rs: Obj) -> None:
        """Record the creation of a ReplicaSet (nothing by default)."""

    # -- conditions and events -----------------------------------------------------------------

    def condition(self, type_: str, status: str, reason: str, message: str) -> Obj:
        now = rfc3339(self.c.clock.now())
        return {"type": type_, "status": status, "lastUpdateTime": now, "lastTransitionTime": now,
                "reason": reason, "message": message}

    def event(self, owner: Obj, reason: str, message: str, type_: str = "Normal") -> None:
        self.c.recorder.record(owner, type_, reason, message, self.COMPONENT)

    # -- ReplicaSets ---------------------------------------------------------------------------

    def owned_replicasets(self, owner: Obj) -> list[Obj]:
        """The owner's ReplicaSets, oldest first."""
        return self.c.store.owned_by("replicasets", owner)

    def fresh(self, rs: Obj) -> Obj:
        """The stored state of `rs` (`rs` itself if it is gone)."""
        return self.c.store.get("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"]) or rs

    def revision(self, rs: Obj) -> int:
        return revision(rs, self.REVISION)

    def next_revision(self, others: list[Obj]) -> int:
        """The revision a ReplicaSet becomes when its template is rolled out: one past the others'."""
        return max((self.revision(r) for r in others), default=0) + 1

    @staticmethod
    def current_replicaset(owner: Obj, rses: list[Obj]) -> Obj | None:
        """The ReplicaSet of the owner's pod template (hash label aside), if there is one."""
        return next((rs for rs in rses if templates_equal(rs["spec"]["template"], owner["spec"]["template"])), None)

    def new_replicaset(self, owner: Obj, replicas: int, annotations: dict[str, str] | None = None) -> Obj:
        """A ReplicaSet for the owner's pod template, not yet stored: `<owner>-<hash>`, the hash (of the template and
        the owner's collisionCount) in its template's labels, its labels and its selector."""
        template = copy.deepcopy(owner["spec"]["template"])
        pod_hash = template_hash(template, (owner.get("status") or {}).get("collisionCount", 0))
        template.setdefault("metadata", {}).setdefault("labels", {})[self.HASH_LABEL] = pod_hash
        selector = copy.deepcopy(owner["spec"]["selector"])
        selector.setdefault("matchLabels", {})[self.HASH_LABEL] = pod_hash
        metadata: Obj = {
            "name": f"{owner['metadata']['name']}-{pod_hash}",
            "namespace": owner["metadata"]["namespace"],
            "labels": dict(labels_of(template)),
        }
        if annotations is not None:
            metadata["annotations"] = annotations
        metadata["ownerReferences"] = [owner_ref(owner)]
        return {"kind": "ReplicaSet", "apiVersion": "apps/v1", "metadata": metadata,
                "spec": {"replicas": replicas, "selector": selector, "template": template}}

    def create_replicaset(self, owner: Obj, rs: Obj) -> Obj:
        """Store a new ReplicaSet, record its creation (and its scaling up), let the ReplicaSet controller sync it;
        its stored state."""
        created = self.c.store.create("replicasets", rs, timestamp=self.c.clock.now())
        self.created_event(owner, created)
        if created["spec"]["replicas"]:
            self.scaled_event(owner, created, 0, created["spec"]["replicas"])
        self.rsc.sync(created["metadata"]["namespace"], created["metadata"]["name"])
        return self.fresh(created)

    def scale_replicaset(self, owner: Obj, rs: Obj, replicas: int) -> bool:
        """Scale `rs` to `replicas` with the owner's desired-replicas annotations, recording a change of count and
        letting the ReplicaSet controller sync. False when there was nothing to change."""
        current = rs["spec"].get("replicas", 0)
        ann = rs["metadata"].setdefault("annotations", {})
        desired = self.desired_annotations(owner)
        if current == replicas and all(ann.get(k) == v for k, v in desired.items()):
            return False
        rs["spec"]["replicas"] = replicas
        ann.update(desired)
        self.c.store.replace("replicasets", rs)
        if current != replicas:
            self.scaled_event(owner, rs, current, replicas)
        self.rsc.sync(rs["metadata"]["namespace"], rs["metadata"]["name"])
        return True

    # -- the progress deadline -----------------------------------------------------------------

    def mark_progress(self, owner: Obj) -> None:
        self._progress_at[owner["metadata"]["uid"]] = self.c.clock.monotonic()

    def progress_since(self, owner: Obj) -> float:
        """When the owner last made progress (now, if it has not been timed yet)."""
        return self._progress_at.setdefault(owner["metadata"]["uid"], self.c.clock.monotonic())

    def deadline(self, owner: Obj) -> float:
        """progressDeadlineSeconds (default 600), in real seconds."""
        return self.c.settings.scaled(owner["spec"].get("progressDeadlineSeconds", 600))

    def deadline_passed(self, owner: Obj) -> bool:
        return self.c.clock.monotonic() - self.progress_since(owner) > self.deadline(owner)
