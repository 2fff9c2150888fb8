"""A simulated cluster: the store plus the controllers watching it (Deployment, Rollout, ReplicaSet, kubelet)."""

from __future__ import annotations

import copy
from collections.abc import Callable

from .cluster import Cluster, Settings
from .controller import DeploymentController
from .defaults import default_deployment, default_rollout, validate_workload
from .meta import RESOURCES, Names, Obj
from .kubelet import Kubelet
from .replicaset_controller import ReplicaSetController
from .rollouts import RolloutController
from .store import Change

# how long a controller takes to notice a change (informer latency)
REACTION = 0.01


class World:
    def __init__(self, settings: Settings, seed: int = 0) -> None:
        self.cluster = Cluster(settings, Names(seed))
        self.kubelet = Kubelet(self.cluster)
        self.replicasets = ReplicaSetController(self.cluster, self.kubelet)
        self.deployments = DeploymentController(self.cluster, self.replicasets)
        self.rollouts = RolloutController(self.cluster, self.replicasets)
        self.cluster.store.on_change(self._on_change)

    @property
    def store(self):  # noqa: ANN201 - the Store
        return self.cluster.store

    def _enqueue(self, kind: str, ns: str, name: str) -> None:
        sync = {"deployments": self.deployments.sync, "rollouts": self.rollouts.sync,
                "replicasets": self.replicasets.sync}[kind]
        self.cluster.scheduler.later(REACTION, (kind, ns, name), sync, ns, name)

    def _on_change(self, change: Change) -> None:
        """Informer handlers: which controller has work after a change."""
        if change.resource in ("deployments", "rollouts", "replicasets"):
            if change.type != "DELETED":
                self._enqueue(change.resource, change.namespace, change.obj["metadata"]["name"])
        if change.resource in ("replicasets", "pods"):
            for ref in change.obj["metadata"].get("ownerReferences") or []:
                if not ref.get("controller"):
                    continue
                owner = {"Deployment": "deployments", "Rollout": "rollouts", "ReplicaSet": "replicasets"}.get(ref["kind"])
                if owner:
                    self._enqueue(owner, change.namespace, ref["name"])
                if owner == "replicasets" and change.type == "DELETED":
                    # the Deployment controller's deletePod handler: Recreate waits for old pods to be gone
                    rs = self.store.get("replicasets", change.namespace, ref["name"])
                    for rs_ref in (rs or {}).get("metadata", {}).get("ownerReferences") or []:
                        if rs_ref.get("controller") and rs_ref["kind"] == "Deployment":
                            self._enqueue("deployments", change.namespace, rs_ref["name"])

    # -- writes the way the API server takes them ---------------------------------------------

    @staticmethod
    def prepare(kind: str, obj: Obj, old: Obj | None) -> Obj:
        rt = RESOURCES[kind]
        obj = default_deployment(obj) if kind == "deployments" else default_rollout(obj)
        validate_workload(rt, obj, old)
        return obj

    def create(self, kind: str, obj: Obj) -> Obj:
        obj = self.prepare(kind, copy.deepcopy(obj), None)
        return self.store.create(kind, obj, timestamp=self.cluster.clock.now())

    def change_spec(self, kind: str, namespace: str, name: str, change: Callable[[Obj], None]) -> Obj:
        """Read, change and write back a workload (defaulted and validated), as a client's update would."""
        old = self.store.must_get(kind, namespace, name)
        new = copy.deepcopy(old)
        change(new)
        new = self.prepare(kind, new, old)
        return self.store.replace(kind, new)

    def change_status(self, kind: str, namespace: str, name: str, change: Callable[[Obj], None]) -> Obj:
        """A write to the /status subresource (what `kubectl argo rollouts abort` does with a merge patch)."""
        obj = self.store.must_get(kind, namespace, name)
        obj.setdefault("status", {})
        change(obj)
        return self.store.replace(kind, obj)

    def forget_timing(self) -> None:
        self.deployments.forget()
        self.rollouts.forget()
