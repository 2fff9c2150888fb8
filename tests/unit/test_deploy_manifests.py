"""deploy/: the CronJob probes, the Argo analysis and the RBAC agree with what the checks and rollbacks do."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from polycheck.core.config import KubernetesConfig
from polycheck.clients.kube import running_in_cluster_without_kubeconfig

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "base"  # the Kustomize base; its overlays are in deploy/overlays/


def documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]


def markers() -> set[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    return {line.split(":")[0].split("(")[0] for line in config["tool"]["pytest"]["ini_options"]["markers"]}


def container_of(pod_spec: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod_spec["containers"]
    return container


def test_cronjob_runs_the_synthetic_checks_as_the_polycheck_account() -> None:
    cron, claim = documents("cronjob.yaml")
    assert cron["kind"] == "CronJob" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    args = container_of(pod)["args"]
    assert args[:4] == ["-m", "synthetic", "--env", "prod"]
    assert "--purpose=probe" in args, "a scheduled probe escalates and never rolls back"
    assert "synthetic" in markers()
    assert pod["serviceAccountName"] == "polycheck"
    assert cron["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] <= 600


def test_analysis_gates_each_step_with_the_canary_marker_and_its_weight() -> None:
    (template,) = documents("analysis-template.yaml")
    assert template["kind"] == "AnalysisTemplate"
    assert {a["name"] for a in template["spec"]["args"]} == {"canary-step", "release-version"}
    job = template["spec"]["metrics"][0]["provider"]["job"]["spec"]
    args = container_of(job["template"]["spec"])["args"]
    marker_expr = args[args.index("-m") + 1]
    assert {"canary", "smoke", "browser"} <= markers() and "canary" in marker_expr
    assert args[args.index("--canary-step") + 1] == "{{args.canary-step}}"
    assert args[args.index("--release-version") + 1] == "{{args.release-version}}"
    assert args[args.index("--rollback") + 1] == "off", "Argo aborts a failed analysis itself"
    assert "--purpose=canary" in args, "an analysis may abort only the Rollout in progress"
    assert job["backoffLimit"] == 0


def test_rbac_grants_what_the_checks_and_rollback_actions_call() -> None:
    docs = {d["kind"]: d for d in documents("rbac.yaml")}
    rules = docs["Role"]["rules"]

    def allowed(group: str, resource: str, verb: str) -> bool:
        return any(group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] for r in rules)

    needed = [
        ("apps", "deployments", "get"), ("apps", "deployments", "patch"), ("apps", "replicasets", "list"),
        ("", "pods", "list"), ("argoproj.io", "rollouts", "get"), ("argoproj.io", "rollouts", "patch"),
        ("argoproj.io", "rollouts/status", "patch"),
    ]
    missing = [n for n in needed if not allowed(*n)]
    assert not missing, f"RBAC lacks {missing}"
    assert not allowed("", "secrets", "get"), "polycheck has no business reading secrets"
    assert docs["RoleBinding"]["subjects"][0]["name"] == docs["ServiceAccount"]["metadata"]["name"] == "polycheck"


def test_every_image_is_the_same_release_of_polycheck() -> None:
    images = set()
    for name in ("cronjob.yaml", "analysis-template.yaml"):
        text = (DEPLOY / name).read_text()
        images |= {line.split("image:")[1].strip() for line in text.splitlines() if "image:" in line and not line.strip().startswith("#")}
    assert images == {"ghcr.io/polyshop/polycheck:0.1.0"}
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert all(image.endswith(f":{version}") for image in images)
    assert (REPO / "deploy" / "Dockerfile").read_text().startswith("# polycheck as an image")


@pytest.mark.parametrize(
    "environ, kubeconfig_exists, expected",
    [({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, False, True), ({}, False, False), ({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, True, False)],
    ids=["pod-without-kubeconfig", "laptop", "pod-with-kubeconfig"],
)
def test_in_cluster_is_used_inside_a_pod_without_kubeconfig(tmp_path: Path, environ: dict[str, str], kubeconfig_exists: bool, expected: bool) -> None:
    kubeconfig = tmp_path / "config"
    if kubeconfig_exists:
        kubeconfig.write_text("apiVersion: v1\n")
    settings = KubernetesConfig(kubeconfig=str(kubeconfig), context="prod")
    assert running_in_cluster_without_kubeconfig(settings, environ) is expected


def test_prometheus_rule_alerts_on_the_metrics_the_probe_pushes() -> None:
    from polycheck.core.config import ProbeConfig

    (rule,) = documents("prometheus-rule.yaml")
    assert (rule["apiVersion"], rule["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    exprs = {r["alert"]: r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]}
    job = f'job="{ProbeConfig().job}"'
    assert "polyshop_check_success" in exprs["PolyshopCheckFailing"] and job in exprs["PolyshopCheckFailing"]
    assert "polyshop_check_last_success_timestamp_seconds" in exprs["PolyshopCheckNoSuccess"]
    assert "push_time_seconds" in exprs["PolyshopProbeNotRun"] and "absent(" in exprs["PolyshopProbeNotRun"]
    cron = documents("cronjob.yaml")[0]
    text = " ".join(container_of(cron["spec"]["jobTemplate"]["spec"]["template"]["spec"])["args"])
    assert "--push-metrics http://" in text, "the CronJob pushes every probe run"


def test_cronjob_sweeps_leftovers_first_from_a_journal_that_outlives_the_pod() -> None:
    cron, claim = documents("cronjob.yaml")
    job = cron["spec"]["jobTemplate"]["spec"]
    pod = job["template"]["spec"]
    (init,) = pod["initContainers"]
    sweep = " ".join(init["args"])
    args = container_of(pod)["args"]
    # one word: as two, a ledger path that exists (every run after the first) is read by pytest as a test path
    (ledger,) = [a.removeprefix("--ledger=") for a in args if a.startswith("--ledger=")]
    assert "--ledger" not in args
    assert f"python -m polycheck cleanup --env prod --older-than 10m --ledger {ledger}" in sweep
    assert 10 * 60 >= job["activeDeadlineSeconds"], "only entries older than any run's deadline are swept"
    mounts = {m["name"]: m["mountPath"] for m in container_of(pod)["volumeMounts"]}
    assert ledger.startswith(mounts["ledger"] + "/") and init["volumeMounts"] == container_of(pod)["volumeMounts"]
    (volume,) = pod["volumes"]
    assert claim["kind"] == "PersistentVolumeClaim" and volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
