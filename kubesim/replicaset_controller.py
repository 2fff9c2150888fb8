"""The ReplicaSet controller: keeps each ReplicaSet's pod count at spec.replicas, asking the kubelet for new pods
and deleting the least valuable ones first, and its status (replicas, ready, available) current."""

from __future__ import annotations

from .cluster import Cluster
from .kubelet import Kubelet, pod_is_ready
from .meta import Obj, labels_of


def _restarts(pod: Obj) -> int:
    return sum(s.get("restartCount", 0) for s in (pod.get("status") or {}).get("containerStatuses") or [])


def _deletion_rank(pod: Obj) -> tuple:
    """Lower sorts first = deleted first (controller.ActivePodsWithRanks, simplified)."""
    phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get((pod.get("status") or {}).get("phase", "Pending"), 0)
    return (bool(pod["spec"].get("nodeName")), phase_rank, pod_is_ready(pod), -_restarts(pod),
            tuple(-ord(ch) for ch in pod["metadata"]["creationTimestamp"]), pod["metadata"]["name"])


class ReplicaSetController:
    """Keeps each ReplicaSet's pod count at spec.replicas and its status current."""

    def __init__(self, cluster: Cluster, kubelet: Kubelet) -> None:
        self.c, self.kubelet = cluster, kubelet

    def sync(self, ns: str, name: str) -> None:
        rs = self.c.store.get("replicasets", ns, name)
        if rs is None:
            return
        pods = [p for p in self.c.store.owned_by("pods", rs) if not p["metadata"].get("deletionTimestamp")]
        want = rs["spec"].get("replicas", 1)
        if len(pods) < want:
            for _ in range(want - len(pods)):
                pod = self.kubelet.create_pod(rs)
                self.c.recorder.record(rs, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}",
                                       "replicaset-controller")
                pods.append(pod)
        elif len(pods) > want:
            doomed = sorted(pods, key=_deletion_rank)[: len(pods) - want]
            for pod in doomed:
                self.kubelet.terminate(pod)
                self.c.recorder.record(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}",
                                       "replicaset-controller")
            names = {p["metadata"]["name"] for p in doomed}
            pods = [p for p in pods if p["metadata"]["name"] not in names]
        rs = self.c.store.get("replicasets", ns, name) or rs
        selector = labels_of({"metadata": rs["spec"]["template"].get("metadata") or {}})
        ready = sum(1 for p in pods if pod_is_ready(p))
        status: Obj = {
            "replicas": len(pods),
            "fullyLabeledReplicas": sum(1 for p in pods if all(labels_of(p).get(k) == v for k, v in selector.items())),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        rs["status"] = {k: v for k, v in status.items() if v or k == "replicas"}
        self.c.store.replace("replicasets", rs)
