"""The simulator's API machinery on its own: patches, selectors, names, discovery, the seed's shape."""

from __future__ import annotations

import re

import pytest

from kubesim import KubeSimulator, kubeconfig_dict
from kubesim.meta import RESOURCES, ApiError, human_duration, template_hash
from kubesim.patches import apply_json_patch, apply_merge_patch, apply_patch, apply_strategic_merge_patch
from kubesim.rollouts import (
    RolloutController, basic_canary_counts, calculate_phase, current_set_weight, fenceposts, parse_duration,
    weighted_counts,
)
from kubesim.selectors import field_selector, label_selector

CONTAINERS = {"spec": {"containers": [
    {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
    {"name": "sidecar", "image": "proxy:1"},
]}}


def test_strategic_merge_merges_containers_by_name_and_keeps_the_order_asked_for() -> None:
    patch = {"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
                      "containers": [{"name": "app", "image": "app:2", "env": [{"name": "B", "$patch": "delete"}]}]}}
    out = apply_strategic_merge_patch(CONTAINERS, patch)
    assert [c["name"] for c in out["spec"]["containers"]] == ["sidecar", "app"]
    app = out["spec"]["containers"][1]
    assert app["image"] == "app:2" and app["env"] == [{"name": "A", "value": "1"}]
    assert CONTAINERS["spec"]["containers"][0]["image"] == "app:1"  # the original is untouched


def test_strategic_merge_directives() -> None:
    doc = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}, "paused": True}}
    retained = apply_strategic_merge_patch(doc, {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}})
    assert retained["spec"]["strategy"] == {"type": "Recreate"}
    assert apply_strategic_merge_patch(doc, {"spec": {"paused": None}})["spec"].keys() == {"strategy"}
    replaced = apply_strategic_merge_patch(doc, {"spec": {"$patch": "replace", "replicas": 1}})
    assert replaced["spec"] == {"replicas": 1}
    added = apply_strategic_merge_patch(CONTAINERS, {"spec": {"containers": [{"name": "new", "image": "n:1"}]}})
    assert [c["name"] for c in added["spec"]["containers"]] == ["app", "sidecar", "new"]
    merged = apply_strategic_merge_patch({"metadata": {"finalizers": ["a"]}}, {"metadata": {"finalizers": ["b"]}})
    assert merged["metadata"]["finalizers"] == ["a", "b"]


def test_json_patch_operations_and_failures() -> None:
    doc = {"metadata": {"annotations": {"a/b": "1"}}, "spec": {"list": [1, 2]}}
    out = apply_json_patch(doc, [
        {"op": "replace", "path": "/metadata/annotations", "value": {"x": "y"}},
        {"op": "add", "path": "/spec/list/-", "value": 3},
        {"op": "remove", "path": "/spec/list/0"},
        {"op": "copy", "from": "/spec/list", "path": "/spec/copy"},
        {"op": "test", "path": "/spec/copy/1", "value": 3},
    ])
    assert out == {"metadata": {"annotations": {"x": "y"}}, "spec": {"list": [2, 3], "copy": [2, 3]}}
    escaped = apply_json_patch(doc, [{"op": "remove", "path": "/metadata/annotations/a~1b"}])
    assert escaped["metadata"]["annotations"] == {}
    with pytest.raises(ApiError) as failed:
        apply_json_patch(doc, [{"op": "test", "path": "/spec/list/0", "value": 9}])
    assert failed.value.code == 422
    with pytest.raises(ApiError) as missing:
        apply_json_patch(doc, [{"op": "replace", "path": "/spec/nope/x", "value": 1}])
    assert missing.value.code == 422
    with pytest.raises(ApiError) as malformed:
        apply_json_patch(doc, {"op": "add"})
    assert malformed.value.code == 400


def test_merge_patch_replaces_lists_and_deletes_nulls() -> None:
    out = apply_merge_patch(CONTAINERS, {"spec": {"containers": [{"name": "only"}]}, "status": {"x": None}})
    assert out == {"spec": {"containers": [{"name": "only"}]}, "status": {}}


def test_custom_resources_refuse_strategic_merge() -> None:
    with pytest.raises(ApiError) as refused:
        apply_patch("application/strategic-merge-patch+json", {}, {}, custom=True)
    assert (refused.value.code, refused.value.reason) == (415, "UnsupportedMediaType")
    assert apply_patch("application/merge-patch+json; charset=utf-8", {}, {"a": 1}, custom=True) == {"a": 1}


@pytest.mark.parametrize(("selector", "labels", "matches"), [
    ("app=x", {"app": "x"}, True),
    ("app==x,tier!=db", {"app": "x", "tier": "web"}, True),
    ("app!=x", {}, True),
    ("app in (x, y),!canary", {"app": "y"}, True),
    ("app notin (x)", {"app": "x"}, False),
    ("app", {"other": "1"}, False),
    ("", {"anything": "1"}, True),
])
def test_label_selectors(selector: str, labels: dict[str, str], matches: bool) -> None:
    assert label_selector(selector)(labels) is matches


def test_field_selectors_know_their_fields() -> None:
    pods = RESOURCES["pods"]
    pod = {"metadata": {"name": "p", "namespace": "polyshop"}, "status": {"phase": "Running"}}
    assert field_selector("metadata.name=p,status.phase=Running", pods)(pod)
    assert not field_selector("status.phase!=Running", pods)(pod)
    with pytest.raises(ApiError) as unknown:
        field_selector("spec.replicas=2", RESOURCES["deployments"])
    assert unknown.value.code == 400 and unknown.value.message == "field label not supported: spec.replicas"
    with pytest.raises(ApiError) as custom:
        field_selector("status.phase=Healthy", RESOURCES["rollouts"])
    assert '"status.phase" is not a known field selector' in custom.value.message


def test_names_look_like_kubernetes_names() -> None:
    assert re.fullmatch(r"[bcdfghjklmnpqrstvwxz2456789]{8,10}", template_hash({"spec": {"containers": []}}))
    assert template_hash({"metadata": {"labels": {"a": "1", "pod-template-hash": "x"}}}) == \
        template_hash({"metadata": {"labels": {"a": "1"}}})
    assert [human_duration(s) for s in (5, 150, 700, 3 * 3600 + 60, 2 * 86400 + 3600, 9 * 86400)] == \
        ["5s", "2m30s", "11m", "3h1m", "2d1h", "9d"]


def test_rollout_phase_follows_argo() -> None:
    spec = {"replicas": 2, "strategy": {"canary": {"trafficRouting": {"nginx": {}}}}}
    healthy = {"updatedReplicas": 2, "availableReplicas": 2, "replicas": 2, "stableRS": "a", "currentPodHash": "a"}
    assert calculate_phase(spec, healthy) == ("Healthy", "")
    assert calculate_phase(spec, healthy | {"currentPodHash": "b"}) == ("Progressing",
                                                                       "waiting for all steps to complete")
    paused = healthy | {"pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "x"}]}
    assert calculate_phase(spec, paused) == ("Paused", "CanaryPauseStep")
    aborted = healthy | {"conditions": [{"type": "Progressing", "reason": "RolloutAborted", "message": "m"}]}
    assert calculate_phase(spec, aborted) == ("Degraded", "RolloutAborted: m")
    assert parse_duration("1h5m30s") == 3930 and parse_duration(15) == 15 and parse_duration(None) is None


def _rs(name: str, replicas: int, available: int) -> dict:
    return {"metadata": {"uid": name, "name": name}, "spec": {"replicas": replicas},
            "status": {"replicas": replicas, "availableReplicas": available}}


@pytest.mark.parametrize(("replicas", "weight", "surge", "unavailable", "new", "stable", "expected"), [
    # cases of Argo's CalculateReplicaCountsForBasicCanary
    (10, 10, 1, 1, 0, 10, (1, 9)),
    (10, 30, 3, 0, 0, 10, (3, 10)),
    (10, 30, 0, 5, 0, 10, (0, 7)),
    (10, 5, 1, 1, 0, 10, (1, 10)),  # 1 of 11 pods (9%) is nearer 5% than 1 of 10
    (10, 20, "20%", 0, 2, 10, (2, 8)),
    (1, 5, 1, 0, 0, 1, (1, 1)),
    (1, 95, 1, 0, 0, 1, (1, 1)),
    # the payment Rollout: 2 replicas, maxSurge 25% = 1, maxUnavailable 25% = 0
    (2, 20, "25%", "25%", 0, 2, (1, 2)),
    (2, 50, "25%", "25%", 1, 2, (1, 1)),
    (2, 0, "25%", "25%", 1, 2, (0, 2)),  # aborted: the canary goes, the stable is whole
])
def test_basic_canary_counts_follow_argo(replicas: int, weight: int, surge: object, unavailable: object, new: int,
                                         stable: int, expected: tuple[int, int]) -> None:
    spec = {"replicas": replicas, "strategy": {"canary": {"maxSurge": surge, "maxUnavailable": unavailable}}}
    assert basic_canary_counts(spec, _rs("new", new, new), _rs("stable", stable, stable), [], weight) == expected


def test_weighted_counts_pick_the_nearest_split() -> None:
    assert [weighted_counts(2, w, 1) for w in (5, 20, 50, 100)] == [(1, 2), (1, 2), (1, 1), (2, 0)]
    assert weighted_counts(3, 50, 0) == (2, 1)  # a tie rounds the canary up
    assert weighted_counts(10, 14, 0) == (1, 9)  # the floor is nearer
    assert weighted_counts(0, 50, 1) == (0, 0)
    assert fenceposts({"replicas": 2, "strategy": {"canary": {}}}) == (1, 0)
    assert fenceposts({"replicas": 4, "strategy": {"canary": {"maxSurge": 0, "maxUnavailable": "25"}}}) == (0, 1)
    steps = [{"setWeight": 5}, {"pause": {}}, {"setWeight": 20}]
    assert [current_set_weight(steps, i) for i in (0, 1, 2, 3)] == [5, 5, 20, 100]
    assert current_set_weight(steps, 1, aborted=True) == 0 and current_set_weight([], 0) == 100


def test_a_traffic_routed_canary_scales_by_weight_or_set_canary_scale() -> None:
    spec = {"replicas": 4, "strategy": {"canary": {"trafficRouting": {"nginx": {}}}}}
    steps = [{"setWeight": 10}, {"setCanaryScale": {"replicas": 3}}, {"pause": {}},
             {"setCanaryScale": {"weight": 50}}, {"setCanaryScale": {"matchTrafficWeight": True}}, {"setWeight": 60}]
    count = RolloutController._routed_canary_count
    assert [count(spec, {}, steps, i, False, False) for i in range(6)] == [1, 3, 3, 2, 1, 3]
    assert count(spec, {}, steps, 2, False, True) == 0  # aborted: the canary goes (after abortScaleDownDelaySeconds)
    assert count(spec, {}, steps, 2, True, False) == 4 and count(spec, {"promoteFull": True}, steps, 0, False, False) == 4


def test_kubeconfig_points_at_the_server() -> None:
    doc = kubeconfig_dict("http://127.0.0.1:1234")
    assert doc["current-context"] == "polyshop-local"
    assert doc["clusters"][0]["cluster"] == {"server": "http://127.0.0.1:1234"}
    assert doc["contexts"][0]["context"]["namespace"] == "polyshop"
    assert doc["users"][0]["user"] == {"token": "polyshop-local-token"}


def test_faults_name_what_they_need() -> None:
    sim = KubeSimulator()
    with pytest.raises(ValueError, match="no Deployment or Rollout named 'billing-service'"):
        sim.crashloop_rollout("billing")
    with pytest.raises(ValueError, match="runs as a Deployment"):
        sim.abort_canary("order")
    with pytest.raises(ValueError, match="unknown fault"):
        sim.inject("meteor", "order")
    with pytest.raises(ValueError, match="'crashloop' in its tag"):
        sim.crashloop_rollout("order", tag="1.3.1")
    assert sim.inject("no-probes", "order")["spec"]["template"]["spec"]["containers"][0].get("readinessProbe") is None
