"""The simulator's Argo Rollouts controller as Argo's users see it, through the official client: a replica-based
canary (no traffic routing, no weights) and a traffic-routed one, paused steps, promote, abort and retry done with
the status patches of the kubectl-argo-rollouts plugin."""

from __future__ import annotations

from typing import Any
from collections.abc import Callable

import pytest
from kubernetes import client

from kubesim import KubeSimulator
from kubesim.testing import SimulatorThread, poll

NS, NAME = "polyshop", "payment-service"
ARGO = ("argoproj.io", "v1alpha1", NS, "rollouts")
HASH = "rollouts-pod-template-hash"
IMAGE = "registry.polyshop.example/payment-service:1.3.1"
STEPS = [{"setWeight": 5}, {"pause": {}}, {"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}},
         {"setWeight": 100}]

pytestmark = pytest.mark.usefixtures("seeded")


def rollout(custom: client.CustomObjectsApi) -> dict[str, Any]:
    return custom.get_namespaced_custom_object(*ARGO, NAME)


def until(custom: client.CustomObjectsApi, holds: Callable[[dict[str, Any]], bool], what: str,
          timeout: float = 10) -> dict[str, Any]:
    """Poll the Rollout's status until `holds`."""
    def describe(s: dict[str, Any]) -> str:
        return (f"phase {s.get('phase')} ({s.get('message')}), step {s.get('currentStepIndex')}, abort "
                f"{s.get('abort')}, pause {s.get('pauseConditions')}")

    return poll(lambda: rollout(custom)["status"], holds, timeout=timeout, what=what, interval=0.02,
                max_interval=0.1, describe=describe)


def paused_at(custom: client.CustomObjectsApi, index: int) -> dict[str, Any]:
    return until(custom, lambda s: s.get("phase") == "Paused" and s.get("currentStepIndex") == index,
                 f"canary paused at step {index}")


def start_canary(custom: client.CustomObjectsApi) -> None:
    """What `kubectl argo rollouts set image` does, with steps that pause until promoted."""
    custom.patch_namespaced_custom_object(*ARGO, NAME, {"spec": {
        "strategy": {"canary": {"steps": STEPS}},
        "template": {"spec": {"containers": [{"name": NAME, "image": IMAGE}]}}}})


def promote(custom: client.CustomObjectsApi) -> dict[str, Any]:
    """`kubectl argo rollouts promote` of a Rollout paused at a canary step: clear the pause conditions (/status)."""
    return custom.patch_namespaced_custom_object_status(*ARGO, NAME, {"status": {"pauseConditions": None}})


def set_abort(custom: client.CustomObjectsApi, abort: bool) -> dict[str, Any]:
    """`kubectl argo rollouts abort` (True) and `kubectl argo rollouts retry rollout` (False)."""
    return custom.patch_namespaced_custom_object_status(*ARGO, NAME, {"status": {"abort": abort}})


def replicasets(apps: client.AppsV1Api) -> dict[str, client.V1ReplicaSet]:
    listed = apps.list_namespaced_replica_set(NS, label_selector=f"app.kubernetes.io/name={NAME}").items
    return {rs.metadata.labels[HASH]: rs for rs in listed}


def split(apps: client.AppsV1Api, status: dict[str, Any]) -> tuple[tuple[int, int], tuple[int, int]]:
    """((canary spec, ready), (stable spec, ready)) replica counts."""
    sets = replicasets(apps)
    canary, stable = sets[status["currentPodHash"]], sets[status["stableRS"]]
    return ((canary.spec.replicas, canary.status.ready_replicas or 0),
            (stable.spec.replicas, stable.status.ready_replicas or 0))


def settled_split(apps: client.AppsV1Api, custom: client.CustomObjectsApi, want: tuple[tuple[int, int], ...]) -> None:
    poll(lambda: split(apps, rollout(custom)["status"]), lambda got: got == want, timeout=10, interval=0.02,
         what=f"canary/stable pods {want}")


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


def events(core: client.CoreV1Api) -> list[tuple[str, str, str]]:
    listed = core.list_namespaced_event(NS, field_selector=f"involvedObject.name={NAME}").items
    return [(e.type, e.reason, e.message) for e in listed]


# -- a replica-based canary -----------------------------------------------------------------------------------


def test_a_replica_based_canary_at_20_percent_has_no_weights(custom: client.CustomObjectsApi,
                                                             apps: client.AppsV1Api, core: client.CoreV1Api) -> None:
    start_canary(custom)
    paused_at(custom, 1)
    promote(custom)
    status = paused_at(custom, 3)
    assert "weights" not in status["canary"]  # Argo sets weights only with trafficRouting
    assert (status["phase"], status["message"]) == ("Paused", "CanaryPauseStep")
    assert status["controllerPause"] is True
    [pause] = status["pauseConditions"]
    assert pause["reason"] == "CanaryPauseStep" and pause["startTime"].endswith("Z")
    assert condition(status, "Paused")["status"] == "True"
    assert (condition(status, "Progressing")["status"], condition(status, "Progressing")["reason"]) == \
        ("Unknown", "RolloutPaused")
    assert status["stableRS"] != status["currentPodHash"] and status["currentStepHash"]
    sets = replicasets(apps)
    for pod_hash, rs in sets.items():
        assert rs.metadata.name == f"{NAME}-{pod_hash}" and rs.spec.selector.match_labels[HASH] == pod_hash
        assert rs.spec.template.metadata.labels[HASH] == pod_hash
    assert sorted(rs.metadata.annotations["rollout.argoproj.io/revision"] for rs in sets.values()) == ["1", "2", "3"]
    # 2 replicas at 20%: 1 canary pod beside 2 stable ones (one surge pod gets nearer 20% than 1 of 2)
    settled_split(apps, custom, ((1, 1), (2, 2)))
    pods = core.list_namespaced_pod(NS, label_selector=f"{HASH}={status['currentPodHash']}").items
    assert len(pods) == 1 and pods[0].spec.containers[0].image == IMAGE
    assert ("Normal", "RolloutStepCompleted", "Rollout step 3/7 completed (setWeight: 20)") in events(core)
    assert not [e for e in events(core) if e[1] == "TrafficWeightUpdated"]


def test_promotion_moves_a_replica_based_canary_step_by_step(custom: client.CustomObjectsApi,
                                                              apps: client.AppsV1Api, core: client.CoreV1Api) -> None:
    start_canary(custom)
    paused_at(custom, 1)
    settled_split(apps, custom, ((1, 1), (2, 2)))  # 5%: the nearest split with at least one canary pod
    promote(custom)
    paused_at(custom, 3)
    promote(custom)
    status = paused_at(custom, 5)
    settled_split(apps, custom, ((1, 1), (1, 1)))  # 50%
    assert status["controllerPause"] is True and "weights" not in status["canary"]
    promote(custom)
    done = until(custom, lambda s: s.get("phase") == "Healthy", "canary promoted")
    assert done["stableRS"] == done["currentPodHash"] and done["currentStepIndex"] == 7
    assert "pauseConditions" not in done and "controllerPause" not in done and "weights" not in done["canary"]
    assert condition(done, "Completed")["status"] == "True" and condition(done, "Healthy")["status"] == "True"
    poll(lambda: sorted(rs.spec.replicas for rs in replicasets(apps).values()), lambda r: r == [0, 0, 2],
         timeout=10, interval=0.02, what="old ReplicaSets scaled down")
    reasons = [e[2] for e in events(core) if e[1] in ("RolloutStepCompleted", "RolloutCompleted")]
    assert reasons[-2:] == ["Rollout step 7/7 completed (setWeight: 100)",
                            f"Rollout completed update to revision 3 ({done['currentPodHash']}): "
                            "Completed all 7 canary steps"]


def test_abort_through_the_status_subresource_then_retry(custom: client.CustomObjectsApi, apps: client.AppsV1Api,
                                                         core: client.CoreV1Api) -> None:
    start_canary(custom)
    paused_at(custom, 1)
    promote(custom)
    paused_at(custom, 3)
    assert set_abort(custom, True)["status"]["abort"] is True
    aborted = until(custom, lambda s: s.get("phase") == "Degraded", "aborted canary degraded")
    assert aborted["abort"] is True and aborted["abortedAt"].endswith("Z")
    assert aborted["message"] == "RolloutAborted: Rollout aborted update to revision 3"
    progressing = condition(aborted, "Progressing")
    assert (progressing["status"], progressing["reason"], progressing["message"]) == \
        ("False", "RolloutAborted", "Rollout aborted update to revision 3")
    assert aborted["currentStepIndex"] == 0 and "pauseConditions" not in aborted and "controllerPause" not in aborted
    assert "weights" not in aborted["canary"]
    settled_split(apps, custom, ((0, 0), (2, 2)))  # all traffic back on the stable pods
    assert ("Warning", "RolloutAborted", "Rollout aborted update to revision 3") in events(core)
    assert rollout(custom)["status"]["abortedAt"] == aborted["abortedAt"]  # kept, not renewed on every sync

    set_abort(custom, False)
    retried = paused_at(custom, 1)
    assert "abort" not in retried and "abortedAt" not in retried
    assert ("Normal", "RolloutRetry", "Retrying Rollout after abort") in events(core)
    settled_split(apps, custom, ((1, 1), (2, 2)))


def test_promote_full_skips_the_remaining_steps(custom: client.CustomObjectsApi, core: client.CoreV1Api) -> None:
    start_canary(custom)
    paused_at(custom, 1)
    custom.patch_namespaced_custom_object_status(*ARGO, NAME, {"status": {"promoteFull": True}})
    done = until(custom, lambda s: s.get("phase") == "Healthy", "fully promoted")
    assert done["stableRS"] == done["currentPodHash"] and done["currentStepIndex"] == 7 and "promoteFull" not in done
    assert any(e[1] == "RolloutCompleted" and e[2].endswith(": Full promotion requested") for e in events(core))


def test_a_manually_paused_rollout_halts(custom: client.CustomObjectsApi) -> None:
    custom.patch_namespaced_custom_object(*ARGO, NAME, {"spec": {"paused": True}})
    start_canary(custom)
    paused = until(custom, lambda s: s.get("observedGeneration") == str(rollout(custom)["metadata"]["generation"])
                   and s.get("phase") == "Paused", "manually paused")
    assert paused["message"] == "manually paused" and paused["currentStepIndex"] == 0
    custom.patch_namespaced_custom_object(*ARGO, NAME, {"spec": {"paused": False}})
    paused_at(custom, 1)


def test_status_written_through_the_main_resource_is_ignored(custom: client.CustomObjectsApi) -> None:
    """Argo's CRD has the status subresource: a write to the Rollout keeps its status, one to /status its spec."""
    before = rollout(custom)
    patched = custom.patch_namespaced_custom_object(*ARGO, NAME, {
        "metadata": {"labels": {"touched": "yes"}}, "status": {"abort": True, "phase": "Degraded"}})
    assert patched["metadata"]["labels"]["touched"] == "yes"
    assert "abort" not in patched["status"] and patched["status"]["phase"] == "Healthy"
    replaced = rollout(custom)
    replaced["status"] = {"abort": True}
    assert "abort" not in custom.replace_namespaced_custom_object(*ARGO, NAME, replaced)["status"]
    status_write = custom.patch_namespaced_custom_object_status(*ARGO, NAME, {"spec": {"replicas": 5}})
    assert status_write["spec"]["replicas"] == 2
    assert rollout(custom)["status"]["stableRS"] == before["status"]["stableRS"]
    assert "abort" not in rollout(custom)["status"]


# -- a traffic-routed canary ------------------------------------------------------------------------------------


def test_a_traffic_routed_canary_sets_weights(kube: SimulatorThread, custom: client.CustomObjectsApi,
                                              apps: client.AppsV1Api, core: client.CoreV1Api) -> None:
    kube.sim.inject("traffic-routing", "payment")
    assert "trafficRouting" in rollout(custom)["spec"]["strategy"]["canary"]
    start_canary(custom)
    at_5 = paused_at(custom, 1)
    assert at_5["canary"]["weights"] == {
        "canary": {"weight": 5, "serviceName": f"{NAME}-canary", "podTemplateHash": at_5["currentPodHash"]},
        "stable": {"weight": 95, "serviceName": NAME, "podTemplateHash": at_5["stableRS"]}}
    settled_split(apps, custom, ((1, 1), (2, 2)))  # ceil(2 x 5%) canary pods; the stable keeps all of its pods
    promote(custom)
    at_20 = paused_at(custom, 3)
    assert (at_20["canary"]["weights"]["canary"]["weight"], at_20["canary"]["weights"]["stable"]["weight"]) == (20, 80)
    assert ("Normal", "TrafficWeightUpdated", "Traffic weight updated from 5 to 20") in events(core)
    set_abort(custom, True)
    aborted = until(custom, lambda s: s.get("phase") == "Degraded", "aborted canary degraded")
    assert aborted["canary"]["weights"]["canary"]["weight"] == 0 and aborted["canary"]["weights"]["stable"]["weight"] == 100
    assert aborted["message"] == "RolloutAborted: Rollout aborted update to revision 3" and aborted["abortedAt"]
    settled_split(apps, custom, ((0, 0), (2, 2)))  # after abortScaleDownDelaySeconds


def test_the_kind_of_canary_is_a_seed_option_and_a_kube_fault(kube: SimulatorThread,
                                                                custom: client.CustomObjectsApi) -> None:
    routed = KubeSimulator(traffic_routing=True).get("rollouts", NAME)
    assert routed["spec"]["strategy"]["canary"]["trafficRouting"] == {"nginx": {"stableIngress": NAME}}
    assert routed["status"]["canary"]["weights"]["stable"]["weight"] == 100
    kube.sim.inject("traffic-routing", "payment")
    until(custom, lambda s: "weights" in s["canary"], "weights once traffic-routed")
    kube.sim.inject("replica-canary", "payment")
    basic = until(custom, lambda s: "weights" not in s["canary"], "no weights once replica-based")
    assert basic["phase"] == "Healthy"
    assert not {"trafficRouting", "canaryService", "stableService"} & set(rollout(custom)["spec"]["strategy"]["canary"])


def test_the_plugin_operations_are_kube_faults_too(kube: SimulatorThread, custom: client.CustomObjectsApi) -> None:
    start_canary(custom)
    paused_at(custom, 1)
    kube.sim.inject("promote", "payment")
    paused_at(custom, 3)
    kube.sim.inject("abort", "payment")
    until(custom, lambda s: s.get("phase") == "Degraded", "aborted")
    kube.sim.inject("retry", "payment")
    paused_at(custom, 1)
    kube.sim.inject("promote", "payment", full=True)
    until(custom, lambda s: s.get("phase") == "Healthy", "fully promoted")
