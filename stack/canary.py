"""Traffic split of a canary: which pod (stable or canary ReplicaSet) serves a request, as a real cluster splits it.

The local stack runs one process per service; for a service released by an Argo Rollout, each request is
attributed to the canary's pod hash for the canary's share of the traffic (a deterministic share) and to the
stable hash otherwise, so that metrics split by `rollouts_pod_template_hash` as a real cluster's do. The share
is what decides it in a cluster:
- a traffic-routed Rollout: the weight set on the traffic provider, `status.canary.weights.canary.weight`;
- a basic canary (no traffic routing): the Service sends requests to every ready pod alike, so the canary's share
  is its ReplicaSet's ready pods over the ready pods of the canary and stable ReplicaSets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

HASH_LABEL = "rollouts-pod-template-hash"


@dataclass(frozen=True)
class Pod:
    pod_hash: str
    canary: bool


def canary_share(rollout: dict[str, Any], replicasets: list[dict[str, Any]]) -> float:
    """The canary's share of the Rollout's traffic in percent (0 when no canary is in progress)."""
    status = rollout.get("status") or {}
    stable, current = status.get("stableRS", ""), status.get("currentPodHash", "")
    if not current or current == stable:
        return 0.0
    weights = (status.get("canary") or {}).get("weights")
    if weights is not None:
        return float((weights.get("canary") or {}).get("weight") or 0)
    ready = {h: 0 for h in (stable, current)}
    for rs in replicasets:
        pod_hash = ((rs.get("metadata") or {}).get("labels") or {}).get(HASH_LABEL)
        if pod_hash in ready:
            ready[pod_hash] += (rs.get("status") or {}).get("readyReplicas", 0)
    serving = ready[stable] + ready[current]
    return 100.0 * ready[current] / serving if serving else 0.0


def _owned_by(rs: dict[str, Any], rollout: dict[str, Any]) -> bool:
    uid = rollout["metadata"].get("uid")
    return any(ref.get("uid") == uid for ref in rs["metadata"].get("ownerReferences") or [])


@dataclass
class CanaryRouter:
    """Reads the Kubernetes simulator's Rollouts; counts requests per service to split them by the canary's share."""

    simulator: Any = None
    _served: dict[str, int] = field(default_factory=dict)

    def pod_for(self, service: str) -> Pod:
        rollout = self.simulator.get("rollouts", f"{service}-service") if self.simulator is not None else None
        if not rollout:
            return Pod("", False)
        status = rollout.get("status", {})
        stable, current = status.get("stableRS", ""), status.get("currentPodHash", "")
        routed = (status.get("canary") or {}).get("weights") is not None
        replicasets = [] if routed else [rs for rs in self.simulator.list("replicasets") if _owned_by(rs, rollout)]
        share = canary_share(rollout, replicasets)
        if share <= 0:
            return Pod(stable or current, False)
        n = self._served.get(service, 0)
        self._served[service] = n + 1
        to_canary = math.floor((n + 1) * share / 100) > math.floor(n * share / 100)
        return Pod(current if to_canary else stable, to_canary)
