"""The rollout checks stop waiting as soon as a pod of the new revision is stuck (crash-looping, its image not
pulled): such a rollout cannot complete, and Kubernetes would say so only at its progress deadline. They keep
waiting for every other reason a rollout is still progressing."""

from __future__ import annotations

import time
from typing import Any

import pytest

from polycheck.checks.rollout import expect_rollout_complete, expect_rollout_settled, new_pods_stuck
from polycheck.core.failures import CheckFailure

OLD, NEW = "5d8f7b9c4", "7c9d6f8b5"
DEADLINE = 20.0


def deployment(*, generation: int = 2, observed: int = 2, updated: int = 1, ready: int = 2) -> dict[str, Any]:
    """order-service mid-rollout from revision 1 to 2 (2 replicas wanted): progressing while `updated` < 2."""
    return {"kind": "Deployment",
            "metadata": {"name": "order-service", "generation": generation,
                         "annotations": {"deployment.kubernetes.io/revision": str(generation)}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "order-service"}}},
            "status": {"observedGeneration": observed, "updatedReplicas": updated, "readyReplicas": ready,
                       "availableReplicas": ready, "replicas": 2 + (updated < 2)}}


def replicaset(pod_hash: str, revision: int, label: str = "pod-template-hash") -> dict[str, Any]:
    return {"metadata": {"name": f"order-service-{pod_hash}", "labels": {label: pod_hash},
                         "annotations": {"deployment.kubernetes.io/revision": str(revision)}}}


def pod(pod_hash: str, index: int, waiting: str | None = None, restarts: int = 0,
        label: str = "pod-template-hash") -> dict[str, Any]:
    state = {"waiting": {"reason": waiting, "message": "back-off 20s restarting failed container"}} if waiting else {"running": {}}
    return {"metadata": {"name": f"order-service-{pod_hash}-{index}", "labels": {label: pod_hash}},
            "status": {"containerStatuses": [{"name": "order-service", "state": state, "restartCount": restarts,
                                              "ready": waiting is None}]}}


class Cluster:
    """Answers each read from a timeline of snapshots: the i-th look at the workload sees snapshot i (the last one
    from then on); pods and ReplicaSets are those of the snapshot the latest workload read saw."""

    namespace = "polyshop"

    def __init__(self, *snapshots: tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]) -> None:
        self.snapshots, self.looks = snapshots, 0

    def _read(self) -> dict[str, Any]:
        self.now = self.snapshots[min(self.looks, len(self.snapshots) - 1)]
        self.looks += 1
        return self.now[0]

    def deployment(self, name: str) -> dict[str, Any]:
        return self._read()

    rollout = deployment

    def replicasets(self, selector: str) -> list[dict[str, Any]]:
        return self.now[1]

    def pods(self, selector: str) -> list[dict[str, Any]]:
        return self.now[2]


SETS = [replicaset(OLD, 1), replicaset(NEW, 2)]


@pytest.mark.parametrize("waiting, restarts", [("CrashLoopBackOff", 3), ("ImagePullBackOff", 0), ("ErrImagePull", 0)])
def test_a_stuck_pod_of_the_new_revision_fails_the_rollout_at_once(waiting: str, restarts: int) -> None:
    cluster = Cluster((deployment(), SETS, [pod(OLD, 1), pod(OLD, 2), pod(NEW, 1, waiting, restarts)]))
    started = time.monotonic()
    with pytest.raises(CheckFailure) as failed:
        expect_rollout_complete(cluster, "order-service", DEADLINE)  # type: ignore[arg-type]
    assert time.monotonic() - started < 1.0 and cluster.looks == 1, "waited although the new pod was stuck"
    message = str(failed.value)
    assert f"order-service-{NEW}-1/order-service {waiting} (restarts {restarts})" in message, message
    assert "rollout cannot complete" in message and "kubectl rollout undo deploy/order-service" in message, message
    assert "1/2 updated" in message, message


def test_pods_still_starting_are_waited_for_until_the_rollout_completes() -> None:
    starting = [pod(OLD, 1), pod(NEW, 1, "ContainerCreating")]
    done = [pod(NEW, 1), pod(NEW, 2)]
    cluster = Cluster((deployment(), SETS, starting), (deployment(), SETS, starting),
                      (deployment(updated=2), SETS, done))
    deploy = expect_rollout_complete(cluster, "order-service", DEADLINE)  # type: ignore[arg-type]
    assert deploy["status"]["updatedReplicas"] == 2 and cluster.looks == 3


def test_a_crash_loop_of_the_old_revision_is_not_the_new_rollout_stuck() -> None:
    """The old pods crash-looping (the reason for this release, say) while the new ones start: waited for."""
    old_stuck = [pod(OLD, 1, "CrashLoopBackOff", 7), pod(NEW, 1, "ContainerCreating")]
    cluster = Cluster((deployment(), SETS, old_stuck), (deployment(updated=2), SETS, [pod(NEW, 1), pod(NEW, 2)]))
    expect_rollout_complete(cluster, "order-service", DEADLINE)  # type: ignore[arg-type]
    assert cluster.looks == 2


def test_nothing_is_judged_stuck_before_the_controller_saw_the_new_spec() -> None:
    """observedGeneration behind generation: the annotated revision is still the old one, whose pods are not the
    rollout's; and a ReplicaSet without a pod-template hash cannot tell new pods from old."""
    crashing = [pod(OLD, 1, "CrashLoopBackOff", 2), pod(OLD, 2, "CrashLoopBackOff", 2)]
    unseen = deployment(generation=2, observed=1)
    unseen["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "1"
    cluster = Cluster((unseen, [replicaset(OLD, 1)], crashing))
    cluster._read()
    assert new_pods_stuck(cluster, unseen) == []  # type: ignore[arg-type]
    no_hash = Cluster((deployment(), [replicaset(NEW, 2, label="other")], [pod(NEW, 1, "CrashLoopBackOff", 2, label="other")]))
    no_hash._read()
    assert new_pods_stuck(no_hash, deployment()) == []  # type: ignore[arg-type]


def test_a_rollout_whose_deadline_passes_still_fails_naming_what_it_saw() -> None:
    cluster = Cluster((deployment(), SETS, [pod(OLD, 1), pod(NEW, 1, "ContainerCreating")]))
    with pytest.raises(CheckFailure, match=r"rollout not complete: .*not reached within 0.5 s.*1/2 updated"):
        expect_rollout_complete(cluster, "order-service", 0.5)  # type: ignore[arg-type]


def argo_rollout(step_index: int) -> dict[str, Any]:
    """payment-service's canary at setWeight 20 (step 2), its canary pods not up yet: not settled."""
    return {"kind": "Rollout",
            "metadata": {"name": "payment-service", "generation": 3, "annotations": {"rollout.argoproj.io/revision": "3"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "payment-service"}},
                     "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 100}]}}},
            "status": {"observedGeneration": "3", "stableRS": OLD, "currentPodHash": NEW, "currentStepIndex": step_index,
                       "phase": "Progressing", "replicas": 3, "updatedReplicas": 1, "readyReplicas": 2,
                       "availableReplicas": 2, "canary": {}}}


ARGO_SETS = [replicaset(OLD, 2, "rollouts-pod-template-hash"), replicaset(NEW, 3, "rollouts-pod-template-hash")]
for _rs, _revision in zip(ARGO_SETS, (2, 3)):
    _rs["metadata"]["annotations"] = {"rollout.argoproj.io/revision": str(_revision)}


def test_a_canary_whose_pods_crash_loop_fails_at_once() -> None:
    pods = [pod(OLD, 1, label="rollouts-pod-template-hash"),
            pod(NEW, 1, "CrashLoopBackOff", 2, label="rollouts-pod-template-hash")]
    cluster = Cluster((argo_rollout(0), ARGO_SETS, pods))
    with pytest.raises(CheckFailure) as failed:
        expect_rollout_settled(cluster, "payment-service", 20, DEADLINE)  # type: ignore[arg-type]
    message = str(failed.value)
    assert cluster.looks == 1 and f"-{NEW}-1/order-service CrashLoopBackOff (restarts 2)" in message, message
    assert message.startswith("rollout polyshop/payment-service: the new revision cannot become healthy"), message
