"""The Kubernetes API simulator as the official Python client sees it, over real HTTP through a kubeconfig."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import httpx
import pytest
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from kubesim import KubeSimulator, Settings, kubeconfig_dict
from kubesim.testing import SimulatorThread, poll

NS = "polyshop"
DEPLOYMENTS = ["auth", "product", "inventory", "order", "notification", "search", "gateway"]

pytestmark = pytest.mark.usefixtures("seeded")


@pytest.fixture
def http(kube: SimulatorThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=kube.url, timeout=10) as session:
        yield session


def rollout(custom: client.CustomObjectsApi, name: str = "payment-service") -> dict[str, Any]:
    return custom.get_namespaced_custom_object("argoproj.io", "v1alpha1", NS, "rollouts", name)


def condition(status: Any, type_: str) -> Any:
    conditions = status.conditions if hasattr(status, "conditions") else status.get("conditions")
    for cond in conditions or []:
        if (cond.type if hasattr(cond, "type") else cond["type"]) == type_:
            return cond
    return None


def complete(apps: client.AppsV1Api, name: str) -> client.V1Deployment:
    """Wait for `kubectl rollout status` success, as its status viewer decides it."""
    def done(d: client.V1Deployment) -> bool:
        s = d.status
        return (d.metadata.generation <= (s.observed_generation or 0) and s.updated_replicas == d.spec.replicas
                and s.replicas == s.updated_replicas and s.available_replicas == s.updated_replicas)

    return poll(lambda: apps.read_namespaced_deployment(name, NS), done, timeout=10, what=f"{name} rolled out",
                describe=lambda d: repr(d.status))


def status_error(exc: pytest.ExceptionInfo[ApiException]) -> dict[str, Any]:
    body = json.loads(exc.value.body)
    assert body["kind"] == "Status" and body["status"] == "Failure"
    return body


# -- discovery and the seed -------------------------------------------------------------------------


def test_version_reports_every_version_info_field(api_client: client.ApiClient) -> None:
    info = client.VersionApi(api_client).get_code()
    assert (info.major, info.minor, info.git_version) == ("1", "33", "v1.33.1")
    for field in ("git_commit", "git_tree_state", "build_date", "go_version", "compiler", "platform"):
        assert getattr(info, field), field


def test_discovery_lists_the_served_resources(api_client: client.ApiClient, http: httpx.Client) -> None:
    groups = {g.name for g in client.ApisApi(api_client).get_api_versions().groups}
    assert {"apps", "argoproj.io"} <= groups
    apps_resources = {r.name: r for r in client.AppsV1Api(api_client).get_api_resources().resources}
    assert {"deployments", "deployments/status", "deployments/scale", "replicasets"} <= set(apps_resources)
    assert apps_resources["deployments"].short_names == ["deploy"]
    assert {"watch", "patch", "create", "list"} <= set(apps_resources["deployments"].verbs)
    core_resources = {r.name for r in client.CoreV1Api(api_client).get_api_resources().resources}
    assert {"pods", "pods/log", "events", "namespaces"} <= core_resources
    argo = http.get("/apis/argoproj.io/v1alpha1").json()
    rollouts = next(r for r in argo["resources"] if r["name"] == "rollouts")
    assert rollouts["kind"] == "Rollout" and rollouts["shortNames"] == ["ro"] and rollouts["namespaced"] is True
    aggregated = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    legacy = http.get("/apis", headers={"Accept": aggregated})
    assert legacy.headers["content-type"] == "application/json" and legacy.json()["kind"] == "APIGroupList"


def test_seed_has_the_polyshop_deployments(apps: client.AppsV1Api) -> None:
    items = {d.metadata.name: d for d in apps.list_namespaced_deployment(NS).items}
    assert sorted(items) == sorted(f"{s}-service" for s in DEPLOYMENTS)
    for name, d in items.items():
        assert d.metadata.labels == {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "polyshop",
                                     "app.kubernetes.io/version": "1.3.0"}
        container = d.spec.template.spec.containers[0]
        assert (container.name, container.image) == (name, f"registry.polyshop.example/{name}:1.3.0")
        assert container.readiness_probe.http_get.path == "/health/ready"
        assert container.liveness_probe.http_get.path == "/health/live"
        assert d.spec.strategy.type == "RollingUpdate"
        assert d.spec.template.spec.termination_grace_period_seconds == 30
        assert d.spec.replicas == 2 and d.status.ready_replicas == 2 and d.status.available_replicas == 2
        assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
        assert condition(d.status, "Progressing").reason == "NewReplicaSetAvailable"
        assert condition(d.status, "Available").status == "True"


def test_each_deployment_has_a_revision_history(apps: client.AppsV1Api, core: client.CoreV1Api) -> None:
    deploy = apps.read_namespaced_deployment("order-service", NS)
    rses = apps.list_namespaced_replica_set(NS, label_selector="app.kubernetes.io/name=order-service").items
    by_revision = {rs.metadata.annotations["deployment.kubernetes.io/revision"]: rs for rs in rses}
    assert sorted(by_revision) == ["1", "2"]
    old, current = by_revision["1"], by_revision["2"]
    assert old.spec.template.spec.containers[0].image.endswith(":1.2.9") and old.spec.replicas == 0
    assert current.spec.replicas == 2 and current.status.ready_replicas == 2
    pod_hash = current.metadata.labels["pod-template-hash"]
    assert current.metadata.name == f"order-service-{pod_hash}"
    owner = current.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.uid, owner.controller) == ("Deployment", "order-service",
                                                                     deploy.metadata.uid, True)
    pods = core.list_namespaced_pod(NS, label_selector=f"pod-template-hash={pod_hash}").items
    assert len(pods) == 2
    for pod in pods:
        assert pod.status.phase == "Running"
        cs = pod.status.container_statuses[0]
        assert cs.ready and cs.restart_count == 0 and cs.state.running is not None
        assert pod.metadata.owner_references[0].name == current.metadata.name
        assert core.read_namespaced_pod(pod.metadata.name, NS).status.pod_ip == pod.status.pod_ip


def test_payment_runs_as_a_healthy_argo_rollout(custom: client.CustomObjectsApi, apps: client.AppsV1Api) -> None:
    listed = custom.list_namespaced_custom_object("argoproj.io", "v1alpha1", NS, "rollouts")
    assert listed["kind"] == "RolloutList" and [r["metadata"]["name"] for r in listed["items"]] == ["payment-service"]
    ro = rollout(custom)
    steps = ro["spec"]["strategy"]["canary"]["steps"]
    assert [s["setWeight"] for s in steps if "setWeight" in s] == [5, 20, 50, 100]
    assert any("pause" in s for s in steps)
    status = ro["status"]
    assert status["phase"] == "Healthy" and status["currentStepIndex"] == len(steps)
    assert status["stableRS"] == status["currentPodHash"]
    assert "trafficRouting" not in ro["spec"]["strategy"]["canary"]
    assert "weights" not in status["canary"]  # a basic canary: Argo sets weights only with traffic routing
    assert status["observedGeneration"] == str(ro["metadata"]["generation"])
    rses = apps.list_namespaced_replica_set(NS, label_selector="app.kubernetes.io/name=payment-service").items
    assert sorted(rs.metadata.annotations["rollout.argoproj.io/revision"] for rs in rses) == ["1", "2"]
    with pytest.raises(ApiException) as missing:
        apps.read_namespaced_deployment("payment-service", NS)
    assert missing.value.status == 404


# -- reads --------------------------------------------------------------------------------------------


def test_selectors_filter_lists(apps: client.AppsV1Api, core: client.CoreV1Api) -> None:
    by_name = apps.list_namespaced_deployment(NS, field_selector="metadata.name=order-service").items
    assert [d.metadata.name for d in by_name] == ["order-service"]
    not_order = apps.list_namespaced_deployment(NS, field_selector="metadata.name!=order-service").items
    assert len(not_order) == 6
    sets = apps.list_namespaced_deployment(NS, label_selector="app.kubernetes.io/name in (auth-service,x)").items
    assert [d.metadata.name for d in sets] == ["auth-service"]
    running = core.list_namespaced_pod(NS, field_selector="status.phase=Running").items
    assert len(running) == 16
    with pytest.raises(ApiException) as bad:
        core.list_namespaced_pod(NS, field_selector="spec.bogus=1")
    assert bad.value.status == 400


def test_errors_are_status_objects(apps: client.AppsV1Api) -> None:
    with pytest.raises(ApiException) as missing:
        apps.read_namespaced_deployment("nope-service", NS)
    body = status_error(missing)
    assert (body["code"], body["reason"]) == (404, "NotFound")
    assert body["details"] == {"name": "nope-service", "group": "apps", "kind": "deployments"}
    assert body["message"] == 'deployments.apps "nope-service" not found'

    existing = apps.read_namespaced_deployment("order-service", NS)
    existing.metadata.resource_version = None
    with pytest.raises(ApiException) as exists:
        apps.create_namespaced_deployment(NS, existing)
    assert (status_error(exists)["reason"], exists.value.status) == ("AlreadyExists", 409)

    stale = apps.read_namespaced_deployment("order-service", NS)
    stale.metadata.resource_version = "1"
    with pytest.raises(ApiException) as conflict:
        apps.replace_namespaced_deployment("order-service", NS, stale)
    assert (status_error(conflict)["reason"], conflict.value.status) == ("Conflict", 409)

    bad = apps.read_namespaced_deployment("order-service", NS)
    bad.metadata = client.V1ObjectMeta(name="broken-service")
    bad.spec.template.metadata.labels = {"app": "other"}
    with pytest.raises(ApiException) as invalid:
        apps.create_namespaced_deployment(NS, bad)
    body = status_error(invalid)
    assert (invalid.value.status, body["reason"]) == (422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "spec.template.metadata.labels"


def test_a_wrong_token_is_refused(kube: SimulatorThread, tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(json.dumps(kubeconfig_dict(kube.url, token="wrong-token")))
    api = config.new_client_from_config(config_file=str(path))
    try:
        with pytest.raises(ApiException) as refused:
            client.AppsV1Api(api).list_namespaced_deployment(NS)
        assert refused.value.status == 401
    finally:
        api.close()


def test_kubectl_get_receives_a_server_side_table(http: httpx.Client) -> None:
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    table = http.get(f"/apis/apps/v1/namespaces/{NS}/deployments", headers={"Accept": accept}).json()
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"][:5]] == ["Name", "Ready", "Up-to-date", "Available", "Age"]
    row = next(r for r in table["rows"] if r["cells"][0] == "order-service")
    assert row["cells"][1:4] == ["2/2", 2, 2]
    assert row["object"]["kind"] == "PartialObjectMetadata"


def test_lists_page_with_limit_and_continue(http: httpx.Client) -> None:
    first = http.get(f"/api/v1/namespaces/{NS}/pods", params={"limit": 10}).json()
    assert len(first["items"]) == 10 and first["metadata"]["remainingItemCount"] == 6
    rest = http.get(f"/api/v1/namespaces/{NS}/pods", params={"limit": 10,
                                                             "continue": first["metadata"]["continue"]}).json()
    assert len(rest["items"]) == 6 and "continue" not in rest["metadata"]


# -- writes --------------------------------------------------------------------------------------------


def test_strategic_merge_patch_rolls_out_a_new_replicaset(apps: client.AppsV1Api) -> None:
    before = apps.read_namespaced_deployment("search-service", NS)
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "search-service"}],
        "containers": [{"name": "search-service", "image": "registry.polyshop.example/search-service:1.3.1"}]}}}}
    patched = apps.patch_namespaced_deployment("search-service", NS, patch)
    assert patched.metadata.generation == before.metadata.generation + 1
    container = patched.spec.template.spec.containers[0]
    assert container.image.endswith(":1.3.1") and container.readiness_probe is not None  # merged by name
    done = complete(apps, "search-service")
    assert done.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    assert condition(done.status, "Progressing").reason == "NewReplicaSetAvailable"
    rses = apps.list_namespaced_replica_set(NS, label_selector="app.kubernetes.io/name=search-service").items
    assert sorted((rs.metadata.annotations["deployment.kubernetes.io/revision"], rs.spec.replicas)
                  for rs in rses) == [("1", 0), ("2", 0), ("3", 2)]


def test_json_patch_undo_reuses_the_previous_replicaset(apps: client.AppsV1Api) -> None:
    """What `kubectl rollout undo` sends: a JSON patch replacing the template and the annotations."""
    rses = apps.list_namespaced_replica_set(NS, label_selector="app.kubernetes.io/name=auth-service").items
    previous = next(rs for rs in rses if rs.metadata.annotations["deployment.kubernetes.io/revision"] == "1")
    template = client.ApiClient().sanitize_for_serialization(previous.spec.template)
    del template["metadata"]["labels"]["pod-template-hash"]
    ops = [{"op": "replace", "path": "/spec/template", "value": template},
           {"op": "replace", "path": "/metadata/annotations", "value": {"deployment.kubernetes.io/revision": "2"}}]
    apps.patch_namespaced_deployment("auth-service", NS, ops)
    done = complete(apps, "auth-service")
    assert done.spec.template.spec.containers[0].image.endswith(":1.2.9")
    reused = apps.read_namespaced_replica_set(previous.metadata.name, NS)
    assert reused.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    assert reused.metadata.annotations["deployment.kubernetes.io/revision-history"] == "1"
    assert reused.spec.replicas == 2
    assert done.metadata.annotations["deployment.kubernetes.io/revision"] == "3"


def test_merge_patch_scales_and_create_answers_201(apps: client.AppsV1Api, http: httpx.Client) -> None:
    response = http.patch(f"/apis/apps/v1/namespaces/{NS}/deployments/gateway-service",
                          content=json.dumps({"spec": {"replicas": 3}}),
                          headers={"Content-Type": "application/merge-patch+json"})
    assert response.status_code == 200
    done = complete(apps, "gateway-service")
    assert done.status.ready_replicas == 3

    body = apps.read_namespaced_deployment("order-service", NS).to_dict()
    manifest = {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "probe-service", "labels": body["metadata"]["labels"]},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "probe"}},
                         "template": {"metadata": {"labels": {"app": "probe"}},
                                      "spec": {"containers": [{"name": "probe", "image": "busybox:1.36"}]}}}}
    created = http.post(f"/apis/apps/v1/namespaces/{NS}/deployments", json=manifest)
    assert created.status_code == 201
    assert created.json()["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": "25%", "maxSurge": "25%"}
    assert complete(apps, "probe-service").status.available_replicas == 1


def test_status_subresource_reads_and_patches_only_status(apps: client.AppsV1Api) -> None:
    status = apps.read_namespaced_deployment_status("product-service", NS)
    assert status.status.ready_replicas == 2
    patched = apps.patch_namespaced_deployment_status(
        "product-service", NS, {"spec": {"replicas": 9}, "status": {"conditions": [
            {"type": "Progressing", "status": "True", "reason": "Touched", "message": "by hand"}]}})
    assert patched.spec.replicas == 2
    assert condition(patched.status, "Progressing").reason == "Touched"
    assert condition(patched.status, "Available") is not None  # conditions merge by type


# -- watch ----------------------------------------------------------------------------------------------


def test_watch_sends_existing_objects_then_changes(apps: client.AppsV1Api, http: httpx.Client) -> None:
    events = list(watch.Watch().stream(apps.list_namespaced_deployment, NS, timeout_seconds=1))
    assert [e["type"] for e in events] == ["ADDED"] * 7
    listed = apps.list_namespaced_deployment(NS, field_selector="metadata.name=order-service")
    rv, generation = listed.metadata.resource_version, listed.items[0].metadata.generation
    apps.patch_namespaced_deployment("order-service", NS, {"spec": {"template": {"metadata": {
        "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}}}}})
    complete(apps, "order-service")
    with http.stream("GET", f"/apis/apps/v1/namespaces/{NS}/deployments",
                     params={"watch": "1", "resourceVersion": rv, "timeoutSeconds": "1",
                             "fieldSelector": "metadata.name=order-service"}) as stream:
        lines = [json.loads(line) for line in stream.iter_lines() if line]
    assert lines and {e["type"] for e in lines} == {"MODIFIED"}
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in lines]
    assert versions == sorted(versions) and len(set(versions)) == len(versions) and versions[0] > int(rv)
    last = lines[-1]["object"]
    assert last["status"]["updatedReplicas"] == 2 and last["metadata"]["generation"] == generation + 1


def test_watch_list_ends_initial_events_with_a_bookmark(http: httpx.Client) -> None:
    params = {"watch": "true", "sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan",
              "allowWatchBookmarks": "true", "timeoutSeconds": "1", "labelSelector": "app.kubernetes.io/part-of"}
    with http.stream("GET", f"/apis/apps/v1/namespaces/{NS}/replicasets", params=params) as stream:
        events = [json.loads(line) for line in stream.iter_lines() if line]
    assert [e["type"] for e in events] == ["ADDED"] * 16 + ["BOOKMARK"]
    bookmark = events[-1]["object"]
    assert bookmark["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert int(bookmark["metadata"]["resourceVersion"]) >= max(
        int(e["object"]["metadata"]["resourceVersion"]) for e in events[:-1])
    refused = http.get(f"/apis/apps/v1/namespaces/{NS}/replicasets",
                       params={"watch": "true", "sendInitialEvents": "true"})
    assert refused.status_code == 422 and refused.json()["reason"] == "Invalid"


def test_watch_from_a_too_old_resource_version_is_gone() -> None:
    sim = KubeSimulator(settings=Settings(watch_history=20))
    with SimulatorThread(sim) as small, httpx.Client(base_url=small.url, timeout=10) as http:
        rv = http.get(f"/api/v1/namespaces/{NS}/pods").json()["metadata"]["resourceVersion"]
        with http.stream("GET", f"/api/v1/namespaces/{NS}/pods",
                         params={"watch": "true", "resourceVersion": rv, "timeoutSeconds": "1"}) as stream:
            assert [line for line in stream.iter_lines() if line] == []  # nothing happened since
        sim.set_image("notification", "1.3.1")
        poll(lambda: sim.store.resource_version, lambda v: v > int(rv) + 25, timeout=10, what="25 changes")
        with http.stream("GET", f"/api/v1/namespaces/{NS}/pods",
                         params={"watch": "true", "resourceVersion": rv, "timeoutSeconds": "1"}) as stream:
            events = [json.loads(line) for line in stream.iter_lines() if line]
    assert [e["type"] for e in events] == ["ERROR"]
    assert (events[0]["object"]["code"], events[0]["object"]["reason"]) == (410, "Expired")


# -- Argo Rollouts ----------------------------------------------------------------------------------------


def test_rollout_merge_patch_on_status_aborts_like_the_argo_plugin(custom: client.CustomObjectsApi) -> None:
    custom.patch_namespaced_custom_object("argoproj.io", "v1alpha1", NS, "rollouts", "payment-service",
                                          {"spec": {"template": {"spec": {"containers": [{
                                              "name": "payment-service",
                                              "image": "registry.polyshop.example/payment-service:1.3.1"}]}}}})
    poll(lambda: rollout(custom)["status"], lambda s: s.get("phase") == "Paused", timeout=10,
         what="canary paused at its first pause step")
    status = custom.patch_namespaced_custom_object_status("argoproj.io", "v1alpha1", NS, "rollouts",
                                                          "payment-service", {"status": {"abort": True}})["status"]
    assert status["abort"] is True
    status = poll(lambda: rollout(custom)["status"], lambda s: s.get("phase") == "Degraded", timeout=10,
                  what="aborted rollout degraded")
    assert status["message"].startswith("RolloutAborted: Rollout aborted update to revision 3")
    assert "weights" not in status["canary"]
    assert condition(status, "Progressing")["reason"] == "RolloutAborted"
    assert status["abortedAt"] and status["currentStepIndex"] == 0


def test_rollout_refuses_strategic_merge_and_creates_with_201(kube: SimulatorThread, http: httpx.Client) -> None:
    path = f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/rollouts"
    refused = http.patch(f"{path}/payment-service", content=b'{"spec":{"paused":true}}',
                         headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert refused.status_code == 415 and refused.json()["reason"] == "UnsupportedMediaType"
    manifest = kube.sim.get("rollouts", "payment-service")
    manifest["metadata"] = {"name": "ledger-service", "labels": {"app": "ledger"}}
    manifest["spec"]["selector"] = {"matchLabels": {"app": "ledger"}}
    manifest["spec"]["template"]["metadata"]["labels"] = {"app": "ledger"}
    del manifest["status"]
    created = http.post(path, json=manifest)
    assert created.status_code == 201
    healthy = poll(lambda: http.get(f"{path}/ledger-service").json()["status"],
                   lambda s: s.get("phase") == "Healthy", timeout=10, what="new rollout healthy")
    assert healthy["stableRS"] == healthy["currentPodHash"] and healthy["availableReplicas"] == 2


# -- faults, as a real cluster shows them -------------------------------------------------------------------


def test_crashloop_fault_shows_crashloopbackoff_and_times_out(kube: SimulatorThread, apps: client.AppsV1Api,
                                                              core: client.CoreV1Api) -> None:
    kube.sim.crashloop_rollout("inventory")
    deploy = apps.read_namespaced_deployment("inventory-service", NS)
    assert deploy.spec.template.spec.containers[0].image.endswith(":1.3.1-crashloop")

    def crashing() -> list[client.V1Pod]:
        pods = core.list_namespaced_pod(NS, label_selector="app.kubernetes.io/name=inventory-service").items
        return [p for p in pods if p.spec.containers[0].image.endswith("crashloop")]

    def restarts(pods: list[client.V1Pod]) -> int:
        return max((p.status.container_statuses or [None])[0].restart_count if p.status.container_statuses else 0
                   for p in pods) if pods else 0

    first = poll(crashing, lambda pods: restarts(pods) >= 1, timeout=10, what="a crash-looping pod")
    pod = first[0]
    cs = pod.status.container_statuses[0]
    assert pod.status.phase == "Running" and not cs.ready
    assert cs.last_state.terminated.exit_code == 1 and cs.last_state.terminated.reason == "Error"
    poll(crashing, lambda pods: restarts(pods) > restarts(first), timeout=10, what="restart count climbing")
    poll(crashing, lambda pods: pods[0].status.container_statuses[0].state.waiting is not None
         and pods[0].status.container_statuses[0].state.waiting.reason == "CrashLoopBackOff",
         timeout=10, what="waiting in CrashLoopBackOff")
    timed_out = poll(lambda: apps.read_namespaced_deployment("inventory-service", NS),
                     lambda d: condition(d.status, "Progressing").reason == "ProgressDeadlineExceeded",
                     timeout=15, what="progress deadline exceeded")
    assert timed_out.status.updated_replicas == 1 and timed_out.status.available_replicas == 2
    assert condition(timed_out.status, "Progressing").status == "False"
    events = core.list_namespaced_event(NS, field_selector=f"involvedObject.name={pod.metadata.name}").items
    assert "BackOff" in {e.reason for e in events}
    logs = core.read_namespaced_pod_log(pod.metadata.name, NS, previous=True)
    assert "Traceback" in logs

    assert kube.sim.rollout_undo("inventory") == "rolled back"
    healed = complete(apps, "inventory-service")
    assert healed.spec.template.spec.containers[0].image.endswith(":1.3.0")
    assert condition(healed.status, "Progressing").reason == "NewReplicaSetAvailable"


def test_image_pull_fault_shows_errimagepull_then_backoff(kube: SimulatorThread, core: client.CoreV1Api) -> None:
    kube.sim.image_pull_failure("notification")
    seen: set[str] = set()

    def reasons() -> set[str]:
        for pod in core.list_namespaced_pod(NS, label_selector="app.kubernetes.io/name=notification-service").items:
            for cs in pod.status.container_statuses or []:
                if cs.state.waiting is not None:
                    seen.add(cs.state.waiting.reason)
                    assert pod.status.phase == "Pending" and cs.image_id == ""
        return seen

    poll(reasons, lambda r: {"ErrImagePull", "ImagePullBackOff"} <= r, timeout=10, interval=0.05, max_interval=0.1,
         what="image pull failures")
    events = core.list_namespaced_event(NS, field_selector="reason=Failed").items
    assert any(e.message.startswith('Failed to pull image "registry.polyshop.example/notification-service:1.3.1-'
                                    'nonexistent"') for e in events)


def test_stuck_rollout_keeps_updated_replicas_below_desired(kube: SimulatorThread, apps: client.AppsV1Api,
                                                            core: client.CoreV1Api) -> None:
    kube.sim.stuck_rollout("product")
    pending = poll(lambda: [p for p in core.list_namespaced_pod(
        NS, label_selector="app.kubernetes.io/name=product-service").items if p.status.phase == "Pending"],
        lambda pods: bool(pods) and bool(pods[0].status.conditions), timeout=10, what="an unschedulable pod")
    scheduled = condition(pending[0].status, "PodScheduled")
    assert (scheduled.status, scheduled.reason) == ("False", "Unschedulable")
    assert "Insufficient cpu" in scheduled.message and pending[0].spec.node_name is None
    deploy = poll(lambda: apps.read_namespaced_deployment("product-service", NS),
                  lambda d: d.status.observed_generation == d.metadata.generation, timeout=10, what="observed")
    assert deploy.status.updated_replicas == 1 < deploy.spec.replicas


def test_probe_and_strategy_faults_change_the_spec(kube: SimulatorThread, apps: client.AppsV1Api) -> None:
    generation = apps.read_namespaced_deployment("search-service", NS).metadata.generation
    kube.sim.remove_probes("gateway")
    kube.sim.recreate_strategy("search")
    gateway = complete(apps, "gateway-service")
    container = gateway.spec.template.spec.containers[0]
    assert container.readiness_probe is None and container.liveness_probe is None
    search = apps.read_namespaced_deployment("search-service", NS)
    assert search.spec.strategy.type == "Recreate" and search.spec.strategy.rolling_update is None
    assert search.metadata.generation == generation + 1
    kube.sim.set_image("search", "1.3.1")
    done = complete(apps, "search-service")
    assert done.status.ready_replicas == 2


def test_canary_faults_show_aborted_and_degraded_rollouts(kube: SimulatorThread,
                                                          custom: client.CustomObjectsApi) -> None:
    kube.sim.abort_canary("payment", at_weight=5)
    aborted = poll(lambda: rollout(custom)["status"], lambda s: s.get("phase") == "Degraded", timeout=10,
                   what="aborted canary")
    assert aborted["abort"] is True and condition(aborted, "Progressing")["reason"] == "RolloutAborted"
    assert aborted["message"] == "RolloutAborted: Rollout aborted update to revision 3" and aborted["abortedAt"]
    assert aborted["currentStepIndex"] == 0 and aborted["stableRS"] != aborted["currentPodHash"]
    kube.sim.reset()
    kube.sim.degrade_canary("payment")
    degraded = poll(lambda: rollout(custom)["status"], lambda s: s.get("phase") == "Degraded", timeout=15,
                    what="degraded canary")
    assert condition(degraded, "Progressing")["reason"] == "ProgressDeadlineExceeded"
    assert degraded["message"].startswith("ProgressDeadlineExceeded: ReplicaSet")
    assert degraded["stableRS"] != degraded["currentPodHash"] and degraded["currentStepIndex"] == 0


def test_reset_returns_to_the_seed(kube: SimulatorThread, apps: client.AppsV1Api) -> None:
    before = apps.list_namespaced_deployment(NS).metadata.resource_version
    kube.sim.crashloop_rollout("order")
    kube.sim.reset()
    after = apps.list_namespaced_deployment(NS)
    assert int(after.metadata.resource_version) > int(before)
    order = next(d for d in after.items if d.metadata.name == "order-service")
    assert order.spec.template.spec.containers[0].image.endswith(":1.3.0")
    assert order.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    assert len(apps.list_namespaced_replica_set(NS, label_selector="app.kubernetes.io/name=order-service").items) == 2
