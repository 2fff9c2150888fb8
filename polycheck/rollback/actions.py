"""Rollback actions, each planned (read-only, for dry-run and the audit log) before it is applied."""

from __future__ import annotations

import copy
import subprocess
from dataclasses import dataclass, field
from typing import Any, Callable

import httpx

from ..argo import canary_state
from ..kube import Kube, revision_of, selector_of
from ..redact import shown_url


class RollbackActionError(RuntimeError):
    """An action could not be planned or applied."""


class RollbackActionSkipped(Exception):
    """There is nothing for the action to do (e.g. the Rollout is already aborted): not a failure."""


@dataclass
class Plan:
    """What an action would do, in words, and how to do it."""

    action: str
    description: str
    apply: Callable[[], str] = field(repr=False)


@dataclass
class ActionContext:
    service: str
    deployment: str
    workload: str  # deployment | rollout
    payload: dict[str, Any]
    kube: Callable[[], Kube]
    webhook_url: Callable[[], str]
    command: list[str]
    timeout: float


def _previous_replicaset(kube: Kube, workload: dict[str, Any]) -> dict[str, Any]:
    current = revision_of(workload)
    older = [rs for rs in kube.replicasets(selector_of(workload)) if 0 < revision_of(rs) < current]
    if not older:
        raise RollbackActionError(f"{workload['metadata']['name']}: no previous revision to roll back to (current revision {current})")
    return max(older, key=revision_of)


def _clean_template(rs: dict[str, Any]) -> dict[str, Any]:
    template = copy.deepcopy(rs["spec"]["template"])
    labels = template.get("metadata", {}).get("labels") or {}
    for key in ("pod-template-hash", "rollouts-pod-template-hash"):
        labels.pop(key, None)
    return template


def _images(template: dict[str, Any]) -> str:
    return ", ".join(c.get("image", "?") for c in template.get("spec", {}).get("containers", []))


def plan_kubernetes_undo(ctx: ActionContext) -> Plan:
    """What `kubectl rollout undo` does: the previous ReplicaSet's pod template, by revision (JSON patch)."""
    kube = ctx.kube()
    deploy = kube.deployment(ctx.deployment)
    previous = _previous_replicaset(kube, deploy)
    template = _clean_template(previous)
    patch = [{"op": "replace", "path": "/spec/template", "value": template}]
    description = (
        f"kubectl rollout undo deploy/{ctx.deployment} -n {kube.namespace}: revision {revision_of(deploy)} "
        f"({_images(deploy['spec']['template'])}) -> revision {revision_of(previous)} ({_images(template)})"
    )

    def apply() -> str:
        kube.patch_deployment(ctx.deployment, patch)
        return f"deploy/{ctx.deployment} rolled back to the template of revision {revision_of(previous)} ({_images(template)})"

    return Plan("kubernetes-undo", description, apply)


def plan_kubernetes_set_image(ctx: ActionContext) -> Plan:
    """`kubectl set image` to the previous version's image (read from the previous ReplicaSet)."""
    kube = ctx.kube()
    deploy = kube.deployment(ctx.deployment)
    previous = _previous_replicaset(kube, deploy)
    old = {c["name"]: c["image"] for c in previous["spec"]["template"]["spec"]["containers"]}
    now = {c["name"]: c["image"] for c in deploy["spec"]["template"]["spec"]["containers"]}
    changes = [{"name": name, "image": image} for name, image in old.items() if name in now and now[name] != image]
    if not changes:
        raise RollbackActionError(f"deploy/{ctx.deployment}: the previous revision runs the same images ({_images(deploy['spec']['template'])})")
    body = {"spec": {"template": {"spec": {"containers": changes}}}}
    words = " ".join(f"{c['name']}={c['image']}" for c in changes)
    description = f"kubectl set image deploy/{ctx.deployment} {words} -n {kube.namespace}"

    def apply() -> str:
        kube.patch_deployment(ctx.deployment, body)
        return f"deploy/{ctx.deployment} set to {words}"

    return Plan("kubernetes-set-image", description, apply)


def plan_argo_abort(ctx: ActionContext) -> Plan:
    """`kubectl argo rollouts abort`: status.abort=true, traffic back to the stable ReplicaSet."""
    kube = ctx.kube()
    rollout = kube.rollout(ctx.deployment)
    status = rollout.get("status", {})
    state = canary_state(rollout)
    if state.aborted:
        raise RollbackActionSkipped(f"rollout {ctx.deployment} is already {state.abort_text()}: not aborted again")
    description = (
        f"kubectl argo rollouts abort {ctx.deployment} -n {kube.namespace} (phase {status.get('phase')}, "
        f"step {status.get('currentStepIndex')}, stable {status.get('stableRS')}, canary {status.get('currentPodHash')})"
    )

    def apply() -> str:
        kube.patch_rollout_status(ctx.deployment, {"status": {"abort": True}})
        return f"rollout {ctx.deployment} aborted"

    return Plan("argo-abort", description, apply)


def plan_argo_undo(ctx: ActionContext) -> Plan:
    """`kubectl argo rollouts undo`: the Rollout's template back to the previous revision's."""
    kube = ctx.kube()
    rollout = kube.rollout(ctx.deployment)
    previous = _previous_replicaset(kube, rollout)
    template = _clean_template(previous)
    description = (
        f"kubectl argo rollouts undo {ctx.deployment} -n {kube.namespace}: revision {revision_of(rollout)} -> "
        f"{revision_of(previous)} ({_images(template)})"
    )

    def apply() -> str:
        kube.patch_rollout(ctx.deployment, {"spec": {"template": template}})
        return f"rollout {ctx.deployment} back to revision {revision_of(previous)} ({_images(template)})"

    return Plan("argo-undo", description, apply)


def plan_webhook(ctx: ActionContext) -> Plan:
    url = ctx.webhook_url()
    shown = shown_url(url)  # scheme and host: a webhook's path and query are its secret

    def apply() -> str:
        response = httpx.post(url, json=ctx.payload, timeout=ctx.timeout)
        if response.status_code >= 300:
            raise RollbackActionError(f"webhook {shown} answered HTTP {response.status_code}: {response.text[:200]}")
        return f"webhook {shown} answered HTTP {response.status_code}"

    return Plan("webhook", f"POST the rollback request for {ctx.service} to {shown}", apply)


def plan_command(ctx: ActionContext) -> Plan:
    values = {"service": ctx.service, "deployment": ctx.deployment, "release": ctx.payload.get("release") or "",
              "run_id": ctx.payload.get("run_id", ""), "env": ctx.payload.get("env", "")}
    try:
        argv = [part.format(**values) for part in ctx.command]
    except (KeyError, IndexError) as exc:
        raise RollbackActionError(f"rollback.command has an unknown placeholder {exc}; known: {', '.join(values)}") from None

    def apply() -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=ctx.timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RollbackActionError(f"command {argv}: {exc}") from None
        if done.returncode != 0:
            raise RollbackActionError(f"command {argv} exited {done.returncode}: {(done.stderr or done.stdout)[-300:]}")
        return f"command {argv} exited 0"

    return Plan("command", f"run {argv} (no shell)", apply)


PLANNERS: dict[str, Callable[[ActionContext], Plan]] = {
    "kubernetes-undo": plan_kubernetes_undo,
    "kubernetes-set-image": plan_kubernetes_set_image,
    "argo-abort": plan_argo_abort,
    "argo-undo": plan_argo_undo,
    "webhook": plan_webhook,
    "command": plan_command,
}
