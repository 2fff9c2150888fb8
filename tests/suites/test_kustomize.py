"""deploy/ as a Kustomize base with staging and prod overlays: rendered with the real `kubectl kustomize`, every
run pointed at its environment, and the whole rendered overlay applied to the local Kubernetes simulator."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from polycheck.core.polling import poll
from tests.support.stack_control import StackControl
from tests.support.suite_runner import REPO

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed (it renders the overlays: kubectl kustomize)")
KINDS = {"ServiceAccount", "Role", "RoleBinding", "CronJob", "PersistentVolumeClaim", "Deployment", "Service",
         "AnalysisTemplate", "PrometheusRule", "NetworkPolicy"}


def render(overlay: str) -> list[dict[str, Any]]:
    done = subprocess.run([KUBECTL or "kubectl", "kustomize", str(REPO / "deploy" / "overlays" / overlay)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def env_args(docs: list[dict[str, Any]]) -> dict[str, str]:
    """kind/name -> the --env every container of it runs with."""
    found: dict[str, str] = {}
    for doc in docs:
        text = json.dumps(doc)
        pods = []
        if doc["kind"] == "CronJob":
            pods.append(doc["spec"]["jobTemplate"]["spec"]["template"]["spec"])
        elif doc["kind"] == "Deployment":
            pods.append(doc["spec"]["template"]["spec"])
        elif doc["kind"] == "AnalysisTemplate" and "job" in doc["spec"]["metrics"][0]["provider"]:
            pods.append(doc["spec"]["metrics"][0]["provider"]["job"]["spec"]["template"]["spec"])
        for pod in pods:
            for container in pod.get("initContainers", []) + pod["containers"]:
                words = " ".join(container.get("args", [])).split()
                found[f"{doc['kind']}/{doc['metadata']['name']}/{container['name']}"] = words[words.index("--env") + 1]
        assert "--env" not in text or pods, doc["kind"]
    return found


@pytest.mark.parametrize("overlay", ["prod", "staging"])
def test_each_overlay_renders_every_resource_for_its_environment(overlay: str) -> None:
    docs = render(overlay)
    assert {d["kind"] for d in docs} == KINDS
    assert all(d["metadata"]["labels"]["polyshop.io/environment"] == overlay for d in docs)
    envs = env_args(docs)
    assert len(envs) == 4 and set(envs.values()) == {overlay}, envs  # cronjob + its sweep, serve, the analysis Job
    cron = next(d for d in docs if d["kind"] == "CronJob")
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    ledger = f"/var/lib/polycheck/leftovers-{overlay}.jsonl"
    args = pod["containers"][0]["args"]
    assert f"--ledger={ledger}" in args and ledger in pod["initContainers"][0]["args"][0]
    assert args[args.index("--push-metrics") + 1].startswith("http"), args  # the overlay's patch left the push URL alone
    images = {c["image"] for d in docs for c in _containers(d)}
    assert images == {"ghcr.io/polyshop/polycheck:0.1.0"}


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc["kind"] == "CronJob":
        pod = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    elif doc["kind"] == "Deployment":
        pod = doc["spec"]["template"]["spec"]
    elif doc["kind"] == "AnalysisTemplate" and "job" in doc["spec"]["metrics"][0]["provider"]:
        pod = doc["spec"]["metrics"][0]["provider"]["job"]["spec"]["template"]["spec"]
    else:
        return []
    return list(pod.get("initContainers", [])) + list(pod["containers"])


def test_the_rendered_overlay_applies_to_the_simulator(stack: StackControl, tmp_path: Path) -> None:
    """kubectl apply of the whole staging overlay (RBAC, the CronJobs and their claim, the Deployment and Service,
    the AnalysisTemplates, the PrometheusRule), then the simulator's controllers roll the Deployment out; applied
    again, nothing changes. --validate=false: the simulator publishes no OpenAPI schema for kubectl's client-side
    validation."""
    info = stack.stack.info
    rendered = render("staging")
    manifest = tmp_path / "polycheck.yaml"
    manifest.write_text(yaml.safe_dump_all(rendered))
    base = [KUBECTL or "kubectl", "--kubeconfig", str(info.kubeconfig), "--cache-dir", str(tmp_path / "cache")]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    applied = subprocess.run([*base, "apply", "--validate=false", "-f", str(manifest)], capture_output=True, text=True, timeout=120, env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "deployment.apps/polycheck created" in applied.stdout, applied.stdout
    created = [line for line in applied.stdout.splitlines() if line.endswith(" created")]
    assert len(created) == len(rendered), applied.stdout
    for kind in ("serviceaccount", "role.rbac.authorization.k8s.io", "rolebinding.rbac.authorization.k8s.io",
                 "cronjob.batch", "persistentvolumeclaim", "service", "analysistemplate.argoproj.io", "networkpolicy.networking.k8s.io",
                 "prometheusrule.monitoring.coreos.com"):
        assert any(line.startswith(f"{kind}/") for line in created), (kind, applied.stdout)

    def read() -> dict[str, Any]:
        got = subprocess.run([*base, "-n", "polyshop", "get", "deploy", "polycheck", "-o", "json"], capture_output=True,
                             text=True, timeout=60, env=env)
        assert got.returncode == 0, got.stderr
        return json.loads(got.stdout)

    deployment = read()
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:2] == ["--env", "staging"] and container["image"] == "ghcr.io/polyshop/polycheck:0.1.0"
    assert deployment["metadata"]["labels"]["polyshop.io/environment"] == "staging"
    poll(read, lambda d: (d.get("status") or {}).get("observedGeneration", 0) >= 1, timeout=20,
         what="the simulator's Deployment controller to observe the polycheck Deployment")
    again = subprocess.run([*base, "apply", "--validate=false", "-f", str(manifest)], capture_output=True, text=True, timeout=120, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    unchanged = [line for line in again.stdout.splitlines() if line.endswith(" unchanged")]
    assert len(unchanged) == len(rendered), again.stdout
