"""Traffic split of a canary: which pod (stable or canary ReplicaSet) serves a request, as Argo's weights say.

The local stack runs one process per service; for a service released by an Argo Rollout, each request is
attributed to the canary's pod hash for the Rollout's current canary weight (a deterministic share) and to
the stable hash otherwise, so that metrics split by `rollouts_pod_template_hash` as a real cluster's do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Pod:
    pod_hash: str
    canary: bool


@dataclass
class CanaryRouter:
    """Reads the Kubernetes simulator's Rollouts; counts requests per service to split them by weight."""

    simulator: Any = None
    _served: dict[str, int] = field(default_factory=dict)

    def pod_for(self, service: str) -> Pod:
        rollout = self.simulator.get("rollouts", f"{service}-service") if self.simulator is not None else None
        if not rollout:
            return Pod("", False)
        status = rollout.get("status", {})
        stable, current = status.get("stableRS", ""), status.get("currentPodHash", "")
        weight = (((status.get("canary") or {}).get("weights") or {}).get("canary") or {}).get("weight") or 0
        if not current or current == stable or weight <= 0 or status.get("abort"):
            return Pod(stable or current, False)
        n = self._served.get(service, 0)
        self._served[service] = n + 1
        to_canary = math.floor((n + 1) * weight / 100) > math.floor(n * weight / 100)
        return Pod(current if to_canary else stable, to_canary)
