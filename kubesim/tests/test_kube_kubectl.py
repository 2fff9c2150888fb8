"""The Kubernetes API simulator as a real `kubectl` sees it (runbook Step 3 and Section 4), through a kubeconfig.

kubectl is whatever `kubectl` is on PATH: on the project's machines, the Google Cloud SDK's dispatcher, which
asks the server's /version and runs its bundled kubectl of the matching minor version (1.33 here).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kubesim.testing import SimulatorThread, poll

KUBECTL = shutil.which("kubectl")
pytestmark = [pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed"), pytest.mark.usefixtures("seeded")]


class Kubectl:
    def __init__(self, kubeconfig: Path, cache: Path) -> None:
        self.base = [KUBECTL or "kubectl", "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache)]

    def __call__(self, *args: str, ok: bool = True, env: dict[str, str] | None = None,
                 timeout: float = 30) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=timeout,
                                env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)
        if ok:
            assert result.returncode == 0, f"kubectl {' '.join(args)} failed: {result.stdout}{result.stderr}"
        return result

    def jsonpath(self, *args: str, path: str) -> str:
        return self(*args, "-o", f"jsonpath={path}").stdout


@pytest.fixture(scope="module")
def kubectl(kube: SimulatorThread, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    home = tmp_path_factory.mktemp("kubectl")
    return Kubectl(kube.write_kubeconfig(home / "config"), home / "cache")


def patches_sent(kube: SimulatorThread, since: int) -> list[tuple[str, str, str]]:
    return [r for r in kube.sim.api.requests_since(since) if r[0] == "PATCH"]


def status_of_a_held_rollout(kube: SimulatorThread, kubectl: Kubectl, deployment: str, change: Callable[[], object],
                             env: dict[str, str] | None = None) -> tuple[str, list[str]]:
    """`kubectl rollout status` of the rollout `change` starts, held (paused) until kubectl is watching it: the new
    pods are Ready 0.3 s after they are made, so a kubectl that starts later (a busy machine) would find the rollout
    done and never wait. (Its output, the paths it asked while it ran.)"""
    kubectl("rollout", "pause", f"deploy/{deployment}")
    change()
    before = kube.sim.api.mark()
    waiting = subprocess.Popen([*kubectl.base, "rollout", "status", f"deploy/{deployment}", "--timeout=20s"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
                               env={**os.environ, **(env or {})})
    try:
        poll(lambda: [r for r in kube.sim.api.requests_since(before) if "watch=true" in r[1] and "/deployments" in r[1]],
             bool, timeout=20, what=f"kubectl rollout status watching deploy/{deployment}")
        kubectl("rollout", "resume", f"deploy/{deployment}")
        status, errors = waiting.communicate(timeout=30)
    finally:
        waiting.kill()
    assert waiting.returncode == 0, status + errors
    return status, [r[1] for r in kube.sim.api.requests_since(before)]


def test_kubectl_talks_to_the_simulator(kubectl: Kubectl) -> None:
    version = json.loads(kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == "v1.33.1"
    deployments = kubectl("get", "deploy").stdout.splitlines()
    assert deployments[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    rows = {line.split()[0]: line.split()[1:] for line in deployments[1:]}
    assert sorted(rows) == sorted(f"{s}-service" for s in
                                  ("auth", "product", "inventory", "order", "notification", "search", "gateway"))
    assert all(row[:3] == ["2/2", "2", "2"] for row in rows.values())
    pods = kubectl("get", "pods", "--no-headers").stdout.splitlines()
    assert len(pods) == 16 and all(line.split()[1:3] == ["1/1", "Running"] for line in pods)
    rollouts = kubectl("get", "rollouts.argoproj.io").stdout.splitlines()
    assert rollouts[0].split() == ["NAME", "DESIRED", "CURRENT", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert rollouts[1].split()[:5] == ["payment-service", "2", "2", "2", "2"]
    assert kubectl.jsonpath("get", "ro", "payment-service", path="{.status.phase}") == "Healthy"


def test_set_image_rollout_status_history_and_undo(kube: SimulatorThread, kubectl: Kubectl) -> None:
    """Runbook Step 3 and Section 4 Option A, end to end."""
    assert "successfully rolled out" in kubectl("rollout", "status", "deploy/order-service", "--timeout=20s").stdout
    image = "registry.polyshop.example/order-service:1.3.1"
    status, _ = status_of_a_held_rollout(kube, kubectl, "order-service", lambda: kubectl(
        "set", "image", "deploy/order-service", f"order-service={image}"))
    assert "Waiting for deployment \"order-service\" rollout to finish" in status
    assert status.rstrip().endswith('deployment "order-service" successfully rolled out')
    history = kubectl("rollout", "history", "deploy/order-service").stdout.split()
    assert history[history.index("CHANGE-CAUSE") + 1:] == ["1", "<none>", "2", "<none>", "3", "<none>"]

    before = kube.sim.api.mark()
    assert "rolled back" in kubectl("rollout", "undo", "deploy/order-service").stdout
    assert [r[2] for r in patches_sent(kube, before)] == ["application/json-patch+json"]
    assert "successfully rolled out" in kubectl("rollout", "status", "deploy/order-service", "--timeout=20s").stdout
    assert kubectl.jsonpath("get", "deploy", "order-service",
                            path="{.spec.template.spec.containers[0].image}").endswith(":1.3.0")
    history = kubectl("rollout", "history", "deploy/order-service").stdout.split()
    assert history[history.index("CHANGE-CAUSE") + 1:] == ["1", "<none>", "3", "<none>", "4", "<none>"]


def test_crashloop_rollout_fails_rollout_status_and_undo_heals_it(kube: SimulatorThread, kubectl: Kubectl) -> None:
    kube.sim.crashloop_rollout("inventory")
    started = time.monotonic()
    failed = kubectl("rollout", "status", "deploy/inventory-service", "--timeout=20s", ok=False)
    assert failed.returncode == 1 and time.monotonic() - started < 15
    assert 'deployment "inventory-service" exceeded its progress deadline' in failed.stderr
    pods = kubectl("get", "pods", "-l", "app.kubernetes.io/name=inventory-service", "--no-headers").stdout
    assert "CrashLoopBackOff" in pods
    assert "Traceback" in kubectl("logs", next(line.split()[0] for line in pods.splitlines()
                                               if "CrashLoopBackOff" in line), "--previous").stdout
    kubectl("rollout", "undo", "deploy/inventory-service")
    assert "successfully rolled out" in kubectl("rollout", "status", "deploy/inventory-service",
                                                "--timeout=20s").stdout
    poll(lambda: kubectl("get", "pods", "-l", "app.kubernetes.io/name=inventory-service", "--no-headers").stdout,
         lambda out: "CrashLoopBackOff" not in out and len(out.splitlines()) == 2, timeout=10,
         what="crash-looping pod gone")


def test_image_pull_failure_shows_in_get_pods(kube: SimulatorThread, kubectl: Kubectl) -> None:
    kube.sim.image_pull_failure("auth")
    out = poll(lambda: kubectl("get", "pods", "-l", "app.kubernetes.io/name=auth-service", "--no-headers").stdout,
               lambda text: "ImagePullBackOff" in text or "ErrImagePull" in text, timeout=10, interval=0.05,
               what="a pod failing to pull")
    assert len(out.splitlines()) == 3


def test_watch_list_client_gets_initial_events_and_a_bookmark(kube: SimulatorThread, kubectl: Kubectl) -> None:
    """Recent kubectl (client-go WatchListClient) watches with sendInitialEvents and waits for the bookmark."""
    status, asked = status_of_a_held_rollout(kube, kubectl, "gateway-service", lambda: kube.sim.set_image("gateway", "1.3.1"),
                                             env={"KUBE_FEATURE_WatchListClient": "true"})
    assert "successfully rolled out" in status
    watches = [path for path in asked if "watch=true" in path]
    assert watches and "sendInitialEvents=true" in watches[0]


def test_scale_describe_and_events(kubectl: Kubectl) -> None:
    kubectl("scale", "deploy/search-service", "--replicas=3")
    kubectl("rollout", "status", "deploy/search-service", "--timeout=20s")
    assert kubectl.jsonpath("get", "deploy", "search-service", path="{.status.readyReplicas}") == "3"
    described = kubectl("describe", "deploy", "search-service").stdout
    assert "Progressing    True    NewReplicaSetAvailable" in described
    assert "Scaled up replica set search-service-" in described and "from 2 to 3" in described


def test_argo_rollout_canary_abort_through_kubectl_patches(kubectl: Kubectl) -> None:
    """What `kubectl argo rollouts set image` and `... abort` send, done with plain kubectl."""
    refused = kubectl("patch", "rollout", "payment-service", "-p", '{"spec":{"paused":true}}', ok=False)
    assert refused.returncode == 1
    assert "strategic-merge-patch+json is not supported by argoproj.io/v1alpha1, Kind=Rollout" in refused.stderr
    image = "registry.polyshop.example/payment-service:1.3.1"
    # the seeded first pause lasts 5m, 1.5 s at the simulator's time scale: on a busy machine it could end before
    # the reads below; as `pause: {}` it holds until promoted, as the test then does
    kubectl("patch", "rollout", "payment-service", "--type=json",
            "-p", json.dumps([{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": image},
                              {"op": "replace", "path": "/spec/strategy/canary/steps/1", "value": {"pause": {}}}]))
    poll(lambda: kubectl.jsonpath("get", "ro", "payment-service", path="{.status.phase}"), lambda p: p == "Paused",
         timeout=10, what="canary paused at a step")
    # a basic (replica-based) canary: Argo sets status.canary.weights only with traffic routing
    assert kubectl.jsonpath("get", "ro", "payment-service", path="{.status.canary.weights}") == ""
    assert kubectl.jsonpath("get", "ro", "payment-service", path="{.status.currentStepIndex}") == "1"
    assert kubectl.jsonpath("get", "ro", "payment-service", path="{.status.pauseConditions[0].reason}") == \
        "CanaryPauseStep"
    # `kubectl argo rollouts promote`: clear the pause conditions through the status subresource
    kubectl("patch", "rollout", "payment-service", "--subresource=status", "--type=merge",
            "-p", '{"status":{"pauseConditions":null}}')
    poll(lambda: kubectl.jsonpath("get", "ro", "payment-service", path="{.status.currentStepIndex}"),
         lambda index: int(index or 0) >= 2, timeout=10, what="the pause step completed")
    kubectl("patch", "rollout", "payment-service", "--subresource=status", "--type=merge",
            "-p", '{"status":{"abort":true}}')
    poll(lambda: kubectl.jsonpath("get", "ro", "payment-service", path="{.status.phase}"),
         lambda p: p == "Degraded", timeout=10, what="aborted canary degraded")
    message = kubectl.jsonpath("get", "ro", "payment-service", path="{.status.message}")
    assert message.startswith("RolloutAborted: Rollout aborted update to revision 3")
