"""The local stack's canary router: the traffic share it gives the canary of an Argo Rollout."""

from __future__ import annotations

import pytest

from stack.canary import canary_share


def test_the_stack_splits_traffic_by_router_weight_or_ready_pods() -> None:
    def rs(pod_hash: str, ready: int) -> dict:
        return {"metadata": {"labels": {"rollouts-pod-template-hash": pod_hash}}, "status": {"readyReplicas": ready}}

    basic = {"status": {"stableRS": "s", "currentPodHash": "c", "canary": {}}}
    assert canary_share(basic, [rs("s", 2), rs("c", 1), rs("old", 2)]) == pytest.approx(100 / 3)
    assert canary_share(basic, [rs("s", 2), rs("c", 0)]) == 0
    routed = {"status": {"stableRS": "s", "currentPodHash": "c", "canary": {"weights": {"canary": {"weight": 20}}}}}
    assert canary_share(routed, [rs("s", 2), rs("c", 1)]) == 20
    assert canary_share({"status": {"stableRS": "s", "currentPodHash": "s"}}, [rs("s", 2)]) == 0
