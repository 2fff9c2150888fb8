"""canary_state: what a Rollout's status says about its canary, for replica-based and traffic-routed canaries."""

from __future__ import annotations

from typing import Any

import pytest

from polycheck.core.failures import CheckFailure

from polycheck.clients.argo import canary_state, rollout_phase, set_weight_at
from polycheck.checks.canary import CanaryPods
from polycheck.checks.rollout import canary_weight, expect_canary_healthy, rollout_settled

STEPS = [{"setWeight": 5}, {"pause": {}}, {"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}},
         {"setWeight": 100}]
STABLE, CANARY = "6b8f9c7d5", "7d78c9d764"
ROUTING = {"canaryService": "payment-service-canary", "stableService": "payment-service",
           "trafficRouting": {"nginx": {"stableIngress": "payment-service"}}}
PAUSED = {"pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2026-11-28T09:30:00Z"}],
          "controllerPause": True, "phase": "Paused", "message": "CanaryPauseStep"}


def rollout(index: int | None, *, routed: bool = False, stable: str = STABLE, current: str = CANARY,
            generation: int = 3, **status: Any) -> dict[str, Any]:
    """A payment-service Rollout as the API returns it, at step `index` of STEPS."""
    body: dict[str, Any] = {
        "stableRS": stable, "currentPodHash": current, "currentStepHash": "5d4f8c6b9", "observedGeneration": str(generation),
        "replicas": 3, "updatedReplicas": 1, "readyReplicas": 3, "availableReplicas": 3, "canary": {}, "blueGreen": {},
    }
    if index is not None:
        body["currentStepIndex"] = index
    body.update(status)
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "payment-service", "namespace": "polyshop", "generation": generation,
                     "annotations": {"rollout.argoproj.io/revision": "3"}},
        "spec": {"replicas": 2, "strategy": {"canary": {**(ROUTING if routed else {}), "steps": STEPS}}},
        "status": body,
    }


def weights(canary: int, current: str = CANARY, stable: str = STABLE) -> dict[str, Any]:
    return {"weights": {"canary": {"weight": canary, "serviceName": "payment-service-canary", "podTemplateHash": current},
                        "stable": {"weight": 100 - canary, "serviceName": "payment-service", "podTemplateHash": stable}}}


def replicaset(pod_hash: str, replicas: int, ready: int) -> dict[str, Any]:
    return {"metadata": {"name": f"payment-service-{pod_hash}", "labels": {"rollouts-pod-template-hash": pod_hash}},
            "spec": {"replicas": replicas}, "status": {"replicas": replicas, "readyReplicas": ready}}


ABORTED = {
    "abort": True, "abortedAt": "2026-11-28T09:31:07Z", "phase": "Degraded",
    "message": "RolloutAborted: Rollout aborted update to revision 3",
    "conditions": [{"type": "Progressing", "status": "False", "reason": "RolloutAborted",
                    "message": "Rollout aborted update to revision 3"}],
}


# -- the weight the gate judges -------------------------------------------------------------------


@pytest.mark.parametrize(("index", "weight", "reached"), [
    (0, 5, False), (1, 5, True), (2, 20, False), (3, 20, True), (4, 50, False), (5, 50, True), (6, 100, False),
])
def test_a_replica_based_canary_is_at_the_set_weight_in_force(index: int, weight: int, reached: bool) -> None:
    state = canary_state(rollout(index, **(PAUSED if index % 2 else {"phase": "Progressing"})))
    assert (state.weight, state.weight_source, state.weight_reached) == (weight, "setWeight", reached)
    assert state.in_progress and not state.aborted and not state.traffic_routed
    assert (state.current_step_index, state.step_count) == (index, 7)
    assert (state.stable_hash, state.canary_hash) == (STABLE, CANARY)


@pytest.mark.parametrize("weight", [5, 20, 50])
def test_a_paused_replica_based_canary_reads_paused_at_its_step(weight: int) -> None:
    index = {5: 1, 20: 3, 50: 5}[weight]
    state = canary_state(rollout(index, **PAUSED))
    assert (state.phase, state.message, state.paused, state.pause_reasons) == ("Paused", "CanaryPauseStep", True,
                                                                              ("CanaryPauseStep",))
    assert state.weight == weight and f"{weight}% of the traffic (setWeight in force at step {index}/7)" == \
        state.weight_text()


@pytest.mark.parametrize(("index", "weight"), [(1, 5), (3, 20), (5, 50)])
def test_a_traffic_routed_canary_is_at_the_weight_set_on_the_router(index: int, weight: int) -> None:
    state = canary_state(rollout(index, routed=True, canary=weights(weight), **{k: v for k, v in PAUSED.items()}))
    assert (state.weight, state.weight_source, state.weight_reached) == (weight, "traffic-routing", True)
    assert state.traffic_routed and state.in_progress and state.phase == "Paused"


def test_the_router_weight_wins_over_the_step_while_the_canary_scales_up() -> None:
    state = canary_state(rollout(2, routed=True, canary=weights(5), phase="Progressing"))
    assert (state.weight, state.weight_source) == (5, "traffic-routing")  # setWeight 20 waits for its pods


def test_the_ready_share_comes_from_the_replicasets() -> None:
    sets = [replicaset(STABLE, 2, 2), replicaset(CANARY, 1, 1), replicaset("5f6b7c8d9", 0, 0)]
    state = canary_state(rollout(3, **PAUSED), sets)
    assert (state.canary_ready, state.stable_ready) == (1, 2)
    assert state.ready_share == pytest.approx(100 / 3)
    assert state.weight_text() == "20% of the traffic (setWeight in force at step 3/7; canary 1 of 3 ready pods = 33%)"
    assert canary_state(rollout(3, **PAUSED)).ready_share is None
    not_ready = canary_state(rollout(0), [replicaset(STABLE, 2, 2), replicaset(CANARY, 1, 0)])
    assert not_ready.ready_share == 0 and not_ready.canary_ready == 0


def test_no_steps_or_past_the_last_step_is_all_of_the_traffic() -> None:
    assert set_weight_at([], 0) == 100 and set_weight_at(STEPS, 7) == 100 and set_weight_at(STEPS, None) == 5
    assert set_weight_at([{"pause": {}}, {"setWeight": 30}], 0) == 0


# -- promoted, healthy, aborted ---------------------------------------------------------------------


def test_healthy_at_100_is_no_canary_in_progress() -> None:
    healthy = canary_state(rollout(7, current=STABLE, phase="Healthy", replicas=2, updatedReplicas=2))
    assert (healthy.phase, healthy.in_progress, healthy.weight, healthy.paused) == ("Healthy", False, 100, False)
    routed = canary_state(rollout(7, routed=True, current=STABLE, phase="Healthy", canary=weights(0, STABLE)))
    assert (routed.in_progress, routed.weight, routed.weight_source) == (False, 0, "traffic-routing")


def test_a_promoted_canary_is_unpausing_until_the_controller_moves_on() -> None:
    """`kubectl argo rollouts promote` clears pauseConditions; controllerPause stays until the controller reacts."""
    promoted = rollout(3, controllerPause=True, phase="Paused", message="CanaryPauseStep")
    state = canary_state(promoted)
    assert (state.phase, state.message, state.paused) == ("Progressing", "waiting for rollout to unpause", False)
    assert state.in_progress and state.weight == 20
    moved_on = canary_state(rollout(4, phase="Progressing", message="more replicas need to be updated"))
    assert (moved_on.current_step_index, moved_on.weight, moved_on.weight_reached) == (4, 50, False)


def test_an_aborted_canary_is_reported_with_when_and_by_whom() -> None:
    state = canary_state(rollout(0, **ABORTED), [replicaset(STABLE, 2, 2), replicaset(CANARY, 0, 0)])
    assert state.aborted and not state.in_progress
    assert (state.phase, state.message) == ("Degraded", "RolloutAborted: Rollout aborted update to revision 3")
    assert state.aborted_at == "2026-11-28T09:31:07Z" and state.abort_message == "Rollout aborted update to revision 3"
    assert state.aborted_by.startswith("a client setting status.abort")
    assert state.weight == 0 and state.ready_share == 0
    assert state.abort_text().startswith("aborted at 2026-11-28T09:31:07Z by a client setting status.abort")
    assert state.abort_text().endswith(": Rollout aborted update to revision 3")
    assert "aborted at 2026-11-28T09:31:07Z" in state.describe()


def test_who_aborted_comes_from_the_condition_or_the_field_manager() -> None:
    by_analysis = dict(ABORTED, conditions=[{"type": "Progressing", "status": "False", "reason": "RolloutAborted",
                                              "message": "Rollout aborted update to revision 3: Step-based analysis "
                                                         "phase error/failed: Metric \"polycheck\" assessed Failed"}])
    assert canary_state(rollout(0, **by_analysis)).aborted_by.startswith(
        "the Argo Rollouts controller (Step-based analysis phase error/failed")
    by_plugin = rollout(0, **ABORTED)
    by_plugin["metadata"]["managedFields"] = [
        {"manager": "rollouts-controller", "operation": "Update", "subresource": "status",
         "time": "2026-11-28T09:31:08Z", "fieldsV1": {"f:status": {"f:phase": {}}}},
        {"manager": "kubectl-argo-rollouts", "operation": "Update", "subresource": "status",
         "time": "2026-11-28T09:31:07Z", "fieldsV1": {"f:status": {"f:abort": {}}}},
    ]
    assert canary_state(by_plugin).aborted_by == "kubectl-argo-rollouts (Update at 2026-11-28T09:31:07Z)"


def test_an_abort_the_controller_has_not_seen_yet_is_already_aborted() -> None:
    state = canary_state(rollout(3, abort=True, **PAUSED))
    assert state.aborted and not state.in_progress and state.aborted_at is None


def test_a_retried_canary_is_in_progress_again_from_the_first_step() -> None:
    retried = rollout(0, phase="Progressing", message="more replicas need to be updated", conditions=[
        {"type": "Progressing", "status": "Unknown", "reason": "RolloutRetry", "message": "Retrying Rollout after abort"}])
    state = canary_state(retried)
    assert state.in_progress and not state.aborted and state.weight == 5 and state.aborted_by == ""


def test_phases_are_argos_four() -> None:
    manual = rollout(3, phase="Paused", message="manually paused")
    manual["spec"]["paused"] = True
    assert canary_state(manual).pause_reasons == ("manually paused",)
    unobserved = rollout(3, generation=4, **PAUSED)
    unobserved["status"]["observedGeneration"] = "3"
    assert rollout_phase(unobserved) == ("Progressing", "waiting for rollout spec update to be observed")
    old_controller = rollout(3, pauseConditions=PAUSED["pauseConditions"], controllerPause=True)
    assert rollout_phase(old_controller) == ("Paused", "CanaryPauseStep")
    assert canary_state(rollout(0, **ABORTED)).phase == "Degraded"
    assert canary_state(rollout(3, phase="Aborted")).phase == ""  # not a phase Argo has


# -- the public names the suites use ----------------------------------------------------------------


def test_canary_pods_keeps_its_public_names() -> None:
    pods = CanaryPods.of(rollout(3, **PAUSED), [replicaset(STABLE, 2, 2), replicaset(CANARY, 1, 1)])
    assert (pods.stable, pods.canary, pods.weight, pods.in_progress, pods.aborted) == (STABLE, CANARY, 20, True, False)
    assert pods.weight_text() == "20% of traffic; setWeight in force at step 3/7; canary 1 of 3 ready pods = 33%"
    assert CanaryPods("a", "b", 20).in_progress and CanaryPods("a", "b", 20).weight_text() == "20% of traffic"
    aborted = CanaryPods.of(rollout(0, **ABORTED))
    assert aborted.aborted and not aborted.in_progress and aborted.abort_text().startswith("aborted at ")


def test_canary_weight_reads_a_replica_based_rollout() -> None:
    assert canary_weight(rollout(3, **PAUSED)) == 20  # the field Argo leaves unset without traffic routing
    assert canary_weight(rollout(3, routed=True, canary=weights(20), **PAUSED)) == 20


def test_a_rollout_is_settled_at_the_analysed_step_or_when_done() -> None:
    at_20 = rollout(3, **PAUSED)
    # paused at a step, it is judged there: at --canary-step's weight, with no step named, or (inconclusive) at another
    assert rollout_settled(at_20, 20) and rollout_settled(at_20, 50) and rollout_settled(at_20)
    assert not rollout_settled(rollout(2, phase="Progressing"), 20)  # its pods are not there yet
    assert rollout_settled(rollout(7, current=STABLE, phase="Healthy"))
    assert rollout_settled(rollout(0, **ABORTED), 20)


def test_expect_canary_healthy_reports_an_abort_and_the_weight() -> None:
    with pytest.raises(pytest.fail.Exception, match=r"was aborted at 2026-11-28T09:31:07Z by a client .*stable "
                                                    r"ReplicaSet 6b8f9c7d5 \(phase Degraded"):
        expect_canary_healthy(rollout(0, **ABORTED), 20)
    expect_canary_healthy(rollout(3, **PAUSED), 20)
    expect_canary_healthy(rollout(3, routed=True, canary=weights(20), **PAUSED), 20)
    with pytest.raises(CheckFailure, match=r"inconclusive: .*carries 20% of the traffic \(setWeight in force at step 3/7\), "
                                           r"but this run gates the 50% step") as wrong_moment:
        expect_canary_healthy(rollout(3, **PAUSED), 50)
    assert wrong_moment.value.inconclusive
    expect_canary_healthy(rollout(7, current=STABLE, phase="Healthy"), None)
    expect_canary_healthy(rollout(3, **PAUSED), None)  # a canary holding at a step, as designed
    with pytest.raises(pytest.fail.Exception, match="phase is 'Degraded'"):
        expect_canary_healthy(rollout(3, phase="Degraded"), None)
