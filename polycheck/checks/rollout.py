"""Runbook Step 3 verdicts on a workload: rollout complete, pods healthy, image, zero-downtime settings, canary."""

from __future__ import annotations

from typing import Any

from polycheck.clients.argo import canary_state
from polycheck.core.config import EnvConfig
from polycheck.core.failures import check_failed, inconclusive
from polycheck.clients.kube import Kube, KubeNotFound, KubeUnavailable, revision_of, selector_of, template_hash
from polycheck.core.polling import PollStopped, PollTimeout, poll


def read_workload(kube: Kube, config: EnvConfig, service: str) -> dict[str, Any]:
    """The service's Deployment, or its Argo Rollout (services.NAME.workload = "rollout"); a missing one fails the
    service's checks, a cluster that cannot be read makes them inconclusive."""
    __tracebackhide__ = True
    kind, name = config.service(service).workload, config.deployment_of(service)
    try:
        return kube.workload(kind, name)
    except KubeUnavailable as exc:
        inconclusive(f"{service}: cannot read {kind} {name}: {exc}")
    except KubeNotFound as exc:
        check_failed(f"{service}: {kind} {name} does not exist in namespace {kube.namespace}: {exc}", culprit=service)

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
    """Wait (poll, up to the deadline) until the Deployment's rollout is complete; fail on a deadline or
    ProgressDeadlineExceeded, and at once when a pod of the new revision is stuck (crash-looping, its image not
    pulled): the rollout cannot complete without a new pod template, and Kubernetes would only say so at its
    progress deadline (10 minutes by default)."""
    __tracebackhide__ = True
    where = f"deployment {kube.namespace}/{name}"

    def look() -> tuple[dict[str, Any], list[str]]:
        deploy = kube.deployment(name)
        return deploy, (new_pods_stuck(kube, deploy) if deployment_progress(deploy)[0] == "progressing" else [])

    try:
        deploy, _ = poll(look, lambda seen: deployment_progress(seen[0])[0] != "progressing",
                         stop=lambda seen: bool(seen[1]), timeout=deadline, what=f"{where} rollout complete",
                         describe=lambda seen: deployment_progress(seen[0])[1])
    except PollStopped as exc:
        check_failed(f"{where}: rollout cannot complete, the new revision's pods are stuck: {'; '.join(exc.last[1])} "  # type: ignore[index]
                     f"({deployment_progress(exc.last[0])[1]}); roll back (kubectl rollout undo deploy/{name})")  # type: ignore[index]
    except PollTimeout as exc:
        check_failed(f"{where}: rollout not complete: {exc}")
    verdict, line = deployment_progress(deploy)
    if verdict == "failed":
        check_failed(f"{where}: rollout failed (ProgressDeadlineExceeded): {line}; roll back (kubectl rollout undo deploy/{name})")
    return deploy


def stuck_containers(pod: dict[str, Any]) -> list[str]:
    """The pod's containers waiting in a state they do not leave by themselves (BAD_WAITING), one line each."""
    lines = []
    for cs in pod.get("status", {}).get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in BAD_WAITING:
            lines.append(f"{pod['metadata']['name']}/{cs.get('name')} {waiting['reason']} "
                         f"(restarts {cs.get('restartCount', 0)}): {waiting.get('message', '')}".rstrip(": "))
    return lines


def observed(workload: dict[str, Any]) -> bool:
    """Whether the controller has seen the workload's newest spec (Argo writes observedGeneration as a string)."""
    seen = str(workload.get("status", {}).get("observedGeneration", ""))
    return seen.isdigit() and int(seen) >= int(workload.get("metadata", {}).get("generation", 0) or 0)


def expect_rollout_settled(kube: Kube, name: str, canary_step: int | None, deadline: float) -> dict[str, Any]:
    """Wait (poll, up to the deadline) until the Argo Rollout can be judged (`rollout_settled`); fail at once when
    a pod of its new revision is stuck: its canary cannot become healthy, and Argo would only mark it Degraded at
    its progress deadline."""
    __tracebackhide__ = True
    where = f"rollout {kube.namespace}/{name}"

    def look() -> tuple[dict[str, Any], list[str]]:
        rollout = kube.rollout(name)
        return rollout, ([] if rollout_settled(rollout, canary_step) else new_pods_stuck(kube, rollout))

    try:
        rollout, _ = poll(look, lambda seen: rollout_settled(seen[0], canary_step), stop=lambda seen: bool(seen[1]),
                          timeout=deadline, what=f"rollout {name} settled",
                          describe=lambda seen: canary_state(seen[0]).describe())
    except PollStopped as exc:
        check_failed(f"{where}: the new revision cannot become healthy, its pods are stuck: {'; '.join(exc.last[1])} "  # type: ignore[index]
                     f"({canary_state(exc.last[0]).describe()})")  # type: ignore[index]
    except PollTimeout as exc:
        check_failed(f"{where}: {exc}")
    return rollout


def new_pods_stuck(kube: Kube, workload: dict[str, Any]) -> list[str]:
    """The stuck containers of the workload's current (newest) revision only; none while that revision's
    ReplicaSet is not there yet (the old pods are not what this rollout is waiting for)."""
    if not observed(workload):
        return []  # the controller has not seen the new spec yet: the annotated revision is still the old one
    current = current_replicaset(kube, workload)
    current_hash = template_hash(current) if current is not None else None
    if current is None or current_hash is None or revision_of(current) != revision_of(workload):
        return []
    return [line for pod in kube.pods(selector_of(workload)) if template_hash(pod) == current_hash
            for line in stuck_containers(pod)]


def current_replicaset(kube: Kube, workload: dict[str, Any]) -> dict[str, Any] | None:
    revision = revision_of(workload)
    sets = kube.replicasets(selector_of(workload))
    current = [rs for rs in sets if revision_of(rs) == revision] if revision else []
    candidates: list[dict[str, Any]] = current or sets
    return max(candidates, key=revision_of) if candidates else None


def expect_pods_healthy(kube: Kube, workload: dict[str, Any]) -> None:
    """No pod waiting in CrashLoopBackOff/ImagePullBackOff, no restart of the current pods, READY = desired."""
    __tracebackhide__ = True
    name, desired = workload["metadata"]["name"], workload.get("spec", {}).get("replicas", 1)
    pods = kube.pods(selector_of(workload))
    current = current_replicaset(kube, workload)
    current_hash = template_hash(current) if current else None
    if workload.get("kind") == "Rollout" and current is not None and canary_state(workload).in_progress:
        desired = current.get("spec", {}).get("replicas", desired)  # at a canary step only part of the pods are new
    problems, restarts, ready = [], [], 0
    for pod in pods:
        pod_name = pod["metadata"]["name"]
        statuses = pod.get("status", {}).get("containerStatuses") or []
        problems.extend(stuck_containers(pod))
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


def canary_weight(rollout: dict[str, Any]) -> int:
    """The canary's traffic weight: `status.canary.weights.canary.weight` when the Rollout uses traffic routing
    (Argo sets weights only then), else the setWeight in force at `status.currentStepIndex`."""
    return canary_state(rollout).weight


def rollout_settled(rollout: dict[str, Any], canary_step: int | None = None) -> bool:
    """Whether a Rollout can be judged now: Healthy, Degraded or aborted; or a canary in progress that has reached
    the weight of `canary_step` (the analysis of that step), or holds paused at a step."""
    state = canary_state(rollout)
    if state.aborted or state.phase in ("Healthy", "Degraded"):
        return True
    if not (state.in_progress and state.weight_reached):
        return False
    if canary_step is not None and state.weight == canary_step:
        return True
    return state.paused  # holding at a step: judged there (a step other than --canary-step is inconclusive)


def expect_canary_healthy(rollout: dict[str, Any], expected_weight: int | None,
                          replicasets: list[dict[str, Any]] | None = None) -> None:
    """Runbook Section 2.3: the Rollout is not aborted or degraded, and at its last step (or at --canary-step's weight)."""
    __tracebackhide__ = True
    name = rollout["metadata"]["name"]
    where = f"rollout {rollout['metadata'].get('namespace', '')}/{name}".replace(" /", " ")
    state = canary_state(rollout, replicasets)
    if state.aborted:
        check_failed(f"{where}: the canary of revision {state.revision or '?'} ({state.canary_hash}) was {state.abort_text()}; "
                     f"traffic is back on the stable ReplicaSet {state.stable_hash} (phase {state.phase}: {state.message})")
    if expected_weight is None:
        if state.in_progress and state.phase in ("Paused", "Progressing"):
            return  # a canary proceeding through its steps as designed (no step was named to hold it to)
        if state.phase != "Healthy":
            check_failed(f"{where}: phase is {state.phase!r} ({state.message}), expected 'Healthy' ({state.describe()})")
        index = state.current_step_index if state.current_step_index is not None else state.step_count
        if index < state.step_count:
            check_failed(f"{where}: the canary stopped at step {index}/{state.step_count} (weights {canary_steps(rollout)}), not at its last step")
        return
    if state.phase == "Degraded":
        check_failed(f"{where}: phase is 'Degraded' ({state.message}) at the canary step of {expected_weight}%")
    if state.in_progress and state.weight != expected_weight:
        inconclusive(f"{where}: the canary carries {state.weight_text()}, but this run gates the {expected_weight}% step "
                     "(--canary-step): the analysis ran at the wrong moment, which says nothing about the release")
