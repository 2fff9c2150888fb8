"""Runbook Step 3 verdicts on a workload: rollout complete, pods healthy, image, zero-downtime settings, canary."""

from __future__ import annotations

from typing import Any

from .failures import check_failed
from .kube import Kube, revision_of, selector_of, template_hash
from .polling import PollTimeout, poll

BAD_WAITING = ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError", "InvalidImageName")


def conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c.get("type"): c for c in obj.get("status", {}).get("conditions") or []}


def deployment_progress(deploy: dict[str, Any]) -> tuple[str, str]:
    """("complete" | "progressing" | "failed", a one-line status), as `kubectl rollout status` judges a Deployment."""
    meta, spec, status = deploy.get("metadata", {}), deploy.get("spec", {}), deploy.get("status", {})
    desired = spec.get("replicas", 1)
    updated, ready = status.get("updatedReplicas", 0), status.get("readyReplicas", 0)
    available, total = status.get("availableReplicas", 0), status.get("replicas", 0)
    progressing = conditions(deploy).get("Progressing", {})
    line = (
        f"generation {meta.get('generation')} observed {status.get('observedGeneration')}, "
        f"{updated}/{desired} updated, {ready} ready, {available} available, {total} total"
        + (f"; Progressing: {progressing.get('reason')} ({progressing.get('message')})" if progressing else "")
    )
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        return "failed", line
    if status.get("observedGeneration", 0) < meta.get("generation", 0):
        return "progressing", line
    if updated == desired and total == updated and available == updated and ready >= updated:
        return "complete", line
    return "progressing", line


def expect_rollout_complete(kube: Kube, name: str, deadline: float) -> dict[str, Any]:
    """Wait (poll, up to the deadline) until the Deployment's rollout is complete; fail on a deadline or ProgressDeadlineExceeded."""
    __tracebackhide__ = True
    where = f"deployment {kube.namespace}/{name}"
    try:
        deploy = poll(lambda: kube.deployment(name), lambda d: deployment_progress(d)[0] != "progressing",
                      timeout=deadline, what=f"{where} rollout complete", describe=lambda d: deployment_progress(d)[1])
    except PollTimeout as exc:
        check_failed(f"{where}: rollout not complete: {exc}")
    verdict, line = deployment_progress(deploy)
    if verdict == "failed":
        check_failed(f"{where}: rollout failed (ProgressDeadlineExceeded): {line}; roll back (kubectl rollout undo deploy/{name})")
    return deploy


def current_replicaset(kube: Kube, workload: dict[str, Any]) -> dict[str, Any] | None:
    revision = revision_of(workload)
    sets = kube.replicasets(selector_of(workload))
    current = [rs for rs in sets if revision_of(rs) == revision] if revision else []
    return max(current or sets, key=revision_of, default=None)


def expect_pods_healthy(kube: Kube, workload: dict[str, Any]) -> None:
    """No pod waiting in CrashLoopBackOff/ImagePullBackOff, no restart of the current pods, READY = desired."""
    __tracebackhide__ = True
    name, desired = workload["metadata"]["name"], workload.get("spec", {}).get("replicas", 1)
    pods = kube.pods(selector_of(workload))
    current = current_replicaset(kube, workload)
    current_hash = template_hash(current) if current else None
    problems, restarts, ready = [], [], 0
    for pod in pods:
        pod_name = pod["metadata"]["name"]
        statuses = pod.get("status", {}).get("containerStatuses") or []
        for cs in statuses:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in BAD_WAITING:
                problems.append(f"{pod_name}/{cs.get('name')} {waiting['reason']} (restarts {cs.get('restartCount', 0)}): {waiting.get('message', '')}".rstrip(": "))
        is_current = current_hash is None or template_hash(pod) == current_hash
        if is_current and any(cs.get("restartCount", 0) > 0 for cs in statuses):
            restarts.append(f"{pod_name} restarted {sum(cs.get('restartCount', 0) for cs in statuses)}x")
        if is_current and statuses and all(cs.get("ready") for cs in statuses):
            ready += 1
    where = f"{workload.get('kind', 'Deployment').lower()} {kube.namespace}/{name}"
    if problems:
        check_failed(f"{where}: pods not running: {'; '.join(problems)}")
    if restarts:
        check_failed(f"{where}: containers restarted since the rollout began: {', '.join(restarts)}")
    if ready != desired:
        check_failed(f"{where}: READY {ready}/{desired} pods of the current revision {revision_of(workload)}")


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    return workload.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []


def expect_release_image(workload: dict[str, Any], container: str, version: str, source: str) -> None:
    """The service's container runs the image tag of this release."""
    __tracebackhide__ = True
    name = workload["metadata"]["name"]
    found = next((c for c in containers(workload) if c.get("name") == container), None)
    if found is None:
        check_failed(f"{name}: no container named {container!r} (containers: {[c.get('name') for c in containers(workload)]})")
    image = found.get("image", "")
    tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else "latest"
    if tag.lstrip("v") != version.lstrip("v"):
        check_failed(f"{name}: container {container} runs {image}, but this release is {version} ({source})")


def expect_zero_downtime(workload: dict[str, Any]) -> None:
    """Runbook Section 8: readiness and liveness probes on the contract paths, rolling updates, a grace period."""
    __tracebackhide__ = True
    name, kind = workload["metadata"]["name"], workload.get("kind", "Deployment")
    spec = workload.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    problems = []
    for container in containers(workload):
        for probe, path in (("readinessProbe", "/health/ready"), ("livenessProbe", "/health/live")):
            actual = ((container.get(probe) or {}).get("httpGet") or {}).get("path")
            if actual != path:
                problems.append(f"container {container.get('name')} {probe} is {actual or 'missing'}, expected httpGet {path}")
    if kind == "Deployment":
        strategy = (spec.get("strategy") or {}).get("type", "RollingUpdate")
        if strategy != "RollingUpdate":
            problems.append(f"strategy is {strategy}, expected RollingUpdate (a {strategy} update takes the service down)")
    elif not (spec.get("strategy") or {}).get("canary"):
        problems.append("the Rollout has no canary strategy")
    grace = pod.get("terminationGracePeriodSeconds")
    if not isinstance(grace, int) or grace <= 0:
        problems.append(f"terminationGracePeriodSeconds is {grace!r}, expected > 0 for a graceful shutdown")
    if problems:
        check_failed(f"{kind.lower()} {name}: not zero-downtime ready: " + "; ".join(problems))


def canary_steps(rollout: dict[str, Any]) -> list[int]:
    steps = ((rollout.get("spec", {}).get("strategy") or {}).get("canary") or {}).get("steps") or []
    return [s["setWeight"] for s in steps if "setWeight" in s]


def canary_weight(rollout: dict[str, Any]) -> int | None:
    weights = ((rollout.get("status", {}).get("canary") or {}).get("weights") or {}).get("canary") or {}
    return weights.get("weight")


def expect_canary_healthy(rollout: dict[str, Any], expected_weight: int | None) -> None:
    """Runbook Section 2.3: the Rollout is not aborted or degraded, and at its last step (or at --canary-step's weight)."""
    __tracebackhide__ = True
    name, status = rollout["metadata"]["name"], rollout.get("status", {})
    where = f"rollout {rollout['metadata'].get('namespace', '')}/{name}".replace(" /", " ")
    phase, message = status.get("phase"), status.get("message", "")
    if status.get("abort"):
        check_failed(f"{where}: the canary was aborted ({message or 'status.abort=true'}); traffic is back on the stable version")
    steps = (((rollout.get("spec", {}).get("strategy") or {}).get("canary") or {}).get("steps")) or []
    index = status.get("currentStepIndex", len(steps))
    if expected_weight is None:
        if phase != "Healthy":
            check_failed(f"{where}: phase is {phase!r} ({message}), expected 'Healthy'")
        if index < len(steps):
            check_failed(f"{where}: the canary stopped at step {index}/{len(steps)} (weights {canary_steps(rollout)}), not at its last step")
        return
    if phase in ("Degraded", "Aborted"):
        check_failed(f"{where}: phase is {phase!r} ({message}) at the canary step of {expected_weight}%")
    weight = canary_weight(rollout)
    if weight is not None and weight != expected_weight:
        check_failed(f"{where}: the canary carries {weight}% of the traffic, expected {expected_weight}% (--canary-step)")
