"""Faults the simulated cluster can be told to show. Each is a real change made through the API's own paths
(a new pod template as `kubectl set image` makes, a strategy change, the status patch `kubectl argo rollouts
abort` sends), so that the cluster then shows it the way a real one does, and `kubectl rollout undo` (or
`kubectl argo rollouts undo`) genuinely repairs the ones that come from a bad pod template.

A bad image is bad because of its tag: a tag containing `crashloop` starts and exits 1 (CrashLoopBackOff), one
containing `nonexistent` cannot be pulled (ErrImagePull / ImagePullBackOff).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any
from collections.abc import Callable

from .meta import Obj
from .runtime import on_loop
from .seed import CANARY_SERVICES, SERVICES, traffic_routing, workload_name

if TYPE_CHECKING:
    from .world import World


class FaultError(ValueError):
    """A fault request the simulator cannot honour (unknown service, wrong kind of workload, bad parameter)."""


# fault kind -> (method name, description), for wiring the faults to a control API
FAULTS: dict[str, tuple[str, str]] = {
    "crashloop": ("crashloop_rollout", "roll out an image that crash-loops (CrashLoopBackOff, restarts climbing, "
                                       "ProgressDeadlineExceeded)"),
    "image-pull": ("image_pull_failure", "roll out an image that cannot be pulled (ErrImagePull / ImagePullBackOff)"),
    "stuck-rollout": ("stuck_rollout", "roll out pods that never schedule: updatedReplicas stays below replicas"),
    "no-probes": ("remove_probes", "roll out a pod template without readiness and liveness probes"),
    "recreate-strategy": ("recreate_strategy", "switch the Deployment to the Recreate strategy"),
    "canary-aborted": ("abort_canary", "start a canary of the Rollout and abort it (status.abort) once a weight is "
                                       "reached: phase Degraded, RolloutAborted"),
    "canary-degraded": ("degrade_canary", "start a canary whose pods crash-loop: the Rollout goes Degraded"),
    "set-image": ("set_image", "roll out another image, as `kubectl set image` does"),
    "traffic-routing": ("use_traffic_routing", "make the Rollout's canary traffic-routed (an NGINX ingress splits the "
                                               "traffic by weight; status.canary.weights is set)"),
    "replica-canary": ("use_replica_canary", "make the Rollout a basic canary: no trafficRouting, its ready pods are "
                                             "the traffic split and status.canary.weights is never set"),
    "promote": ("promote_rollout", "what `kubectl argo rollouts promote [--full]` sends (status subresource)"),
    "abort": ("abort_rollout", "what `kubectl argo rollouts abort` sends: status.abort=true"),
    "retry": ("retry_rollout", "what `kubectl argo rollouts retry rollout` sends: status.abort=false"),
}


class Faults:
    """Mixed into KubeSimulator; `self.world` is the live cluster, `self.namespace` its namespace."""

    world: World
    namespace: str
    registry: str

    def _owner_loop(self) -> tuple[Any, int | None]:  # provided by KubeSimulator
        raise NotImplementedError

    # -- helpers ---------------------------------------------------------------------------------

    def _workload(self, service: str) -> tuple[str, str]:
        """(resource, name) of a service's workload; FaultError for an unknown service."""
        name = workload_name(service)
        for kind in ("deployments", "rollouts"):
            if self.world.store.get(kind, self.namespace, name) is not None:
                return kind, name
        known = ", ".join(SERVICES)
        raise FaultError(f"no Deployment or Rollout named {name!r} in namespace {self.namespace!r} "
                         f"(services: {known})")

    def _image_for(self, name: str, image_or_tag: str) -> str:
        if "/" in image_or_tag or (":" in image_or_tag and not image_or_tag.startswith(":")):
            return image_or_tag
        return f"{self.registry}/{name}:{image_or_tag.lstrip(':')}"

    def _change_template(self, service: str, change: Callable[[Obj, Obj], None]) -> Obj:
        """Apply `change(container, template)` to the service's first container: a new pod template."""
        kind, name = self._workload(service)

        def edit(obj: Obj) -> None:
            template = obj["spec"]["template"]
            container = next(c for c in template["spec"]["containers"] if c["name"] == name)
            change(container, template)

        return self.world.change_spec(kind, self.namespace, name, edit)

    def _rollout_only(self, service: str) -> str:
        kind, name = self._workload(service)
        if kind != "rollouts":
            raise FaultError(f"{name!r} runs as a Deployment; canary faults need an Argo Rollout "
                             f"(canary services: {', '.join(CANARY_SERVICES)})")
        return name

    def _deployment_only(self, service: str) -> str:
        kind, name = self._workload(service)
        if kind != "deployments":
            raise FaultError(f"{name!r} runs as an Argo Rollout; this fault needs a Deployment")
        return name

    # -- the faults ------------------------------------------------------------------------------

    @on_loop
    def set_image(self, service: str, image: str) -> Obj:
        """Roll out another image, as `kubectl set image deploy/<svc>-service <svc>-service=<image>` does.

        `image` is a full reference or only a tag (`1.3.1`, `1.3.1-crashloop`). Works for Deployments and Rollouts
        (a Rollout then runs its canary steps). Returns the updated workload.
        """
        _, name = self._workload(service)
        new_image = self._image_for(name, image)

        def change(container: Obj, _: Obj) -> None:
            container["image"] = new_image

        return self._change_template(service, change)

    @on_loop
    def crashloop_rollout(self, service: str, tag: str = "1.3.1-crashloop") -> Obj:
        """Roll out an image that exits 1 at start-up: its pods go CrashLoopBackOff with restartCount climbing,
        the rollout never completes (the old pods keep serving, maxUnavailable 0), and after progressDeadlineSeconds
        (scaled by the simulator's time_scale) the Progressing condition turns False with ProgressDeadlineExceeded.
        `kubectl rollout undo` restores the previous template and health."""
        if "crashloop" not in tag:
            raise FaultError(f"a crash-looping image needs 'crashloop' in its tag, got {tag!r}")
        return self.set_image(service, tag)

    @on_loop
    def image_pull_failure(self, service: str, tag: str = "1.3.1-nonexistent") -> Obj:
        """Roll out an image tag the registry does not have: the new pods stay Pending with ErrImagePull, then
        ImagePullBackOff, and the rollout times out like a crash loop does."""
        if "nonexistent" not in tag:
            raise FaultError(f"an unpullable image needs 'nonexistent' in its tag, got {tag!r}")
        return self.set_image(service, tag)

    @on_loop
    def stuck_rollout(self, service: str, tag: str = "1.3.1", cpu: str = "64") -> Obj:
        """Roll out a new image whose container requests more CPU (`cpu`, default 64 cores) than any node has:
        the new pod stays Pending (PodScheduled False, reason Unschedulable, FailedScheduling events), so
        updatedReplicas stays below replicas until the progress deadline passes."""
        _, name = self._workload(service)
        new_image = self._image_for(name, tag)

        def change(container: Obj, _: Obj) -> None:
            container["image"] = new_image
            container.setdefault("resources", {}).setdefault("requests", {})["cpu"] = cpu

        return self._change_template(service, change)

    @on_loop
    def remove_probes(self, service: str) -> Obj:
        """Roll out the pod template without readiness and liveness probes (runbook Section 8). The rollout
        completes; the pods are Ready as soon as they run."""
        def change(container: Obj, _: Obj) -> None:
            container.pop("readinessProbe", None)
            container.pop("livenessProbe", None)

        return self._change_template(service, change)

    @on_loop
    def recreate_strategy(self, service: str) -> Obj:
        """Switch a Deployment to `strategy: {type: Recreate}` (no rolling updates, runbook Section 8). The pod
        template is unchanged, so no new ReplicaSet; the next template change kills every pod before starting
        new ones."""
        name = self._deployment_only(service)

        def change(obj: Obj) -> None:
            obj["spec"]["strategy"] = {"type": "Recreate"}

        return self.world.change_spec("deployments", self.namespace, name, change)

    @on_loop
    def abort_canary(self, service: str = "payment", tag: str = "1.3.1", at_weight: int = 20) -> Obj:
        """Start a canary of the Rollout to `tag` and, once its setWeight steps have reached `at_weight`, abort it the
        way `kubectl argo rollouts abort` does (merge patch `{"status":{"abort":true}}` on /status). The controller
        then shows what Argo does: status.abort true and abortedAt, currentStepIndex 0, the canary scaled down (a
        traffic-routed one after abortScaleDownDelaySeconds, with weight 0), Progressing False RolloutAborted
        "Rollout aborted update to revision N", phase Degraded with message "RolloutAborted: ..."."""
        name = self._rollout_only(service)
        self.set_image(service, tag)
        ns = self.namespace

        def reached() -> bool:
            ro = self.world.store.get("rollouts", ns, name) or {}
            status = ro.get("status") or {}
            if status.get("observedGeneration") != str(ro.get("metadata", {}).get("generation")):
                return False  # the controller has not seen the new template yet
            if status.get("stableRS") == status.get("currentPodHash"):
                return True
            steps = (((ro["spec"].get("strategy") or {}).get("canary") or {}).get("steps")) or []
            done = [int(s["setWeight"]) for s in steps[: status.get("currentStepIndex", 0)] if "setWeight" in s]
            return bool(done) and max(done) >= at_weight

        self._when(("abort", name), reached, lambda: self.abort_rollout(service))
        return self.world.store.must_get("rollouts", ns, name)

    # -- the kubectl-argo-rollouts plugin's patches and the kind of canary -----------------------------

    @on_loop
    def abort_rollout(self, service: str = "payment") -> Obj:
        """`kubectl argo rollouts abort`: the merge patch `{"status":{"abort":true}}` on the status subresource."""
        name = self._rollout_only(service)
        return self.world.change_status("rollouts", self.namespace, name, lambda ro: ro["status"].update(abort=True))

    @on_loop
    def retry_rollout(self, service: str = "payment") -> Obj:
        """`kubectl argo rollouts retry rollout`: the merge patch `{"status":{"abort":false}}` on /status."""
        name = self._rollout_only(service)
        return self.world.change_status("rollouts", self.namespace, name, lambda ro: ro["status"].update(abort=False))

    @on_loop
    def promote_rollout(self, service: str = "payment", full: bool = False) -> Obj:
        """`kubectl argo rollouts promote [--full]` (its getPatches): unpause a manually paused Rollout
        (`spec.paused: false`); clear the pause conditions (`status.pauseConditions: null`), or when there are none
        skip the current step (`currentStepIndex` + 1); with `full`, `status.promoteFull: true`."""
        name = self._rollout_only(service)
        ro = self.world.store.must_get("rollouts", self.namespace, name)
        status, steps = ro.get("status") or {}, ((ro["spec"].get("strategy") or {}).get("canary") or {}).get("steps")

        def patch_status(st: Obj) -> None:
            if full:
                if st.get("currentPodHash") != st.get("stableRS"):
                    st["promoteFull"] = True
            elif st.get("pauseConditions"):
                st.pop("pauseConditions")
            elif steps:
                st["currentStepIndex"] = min(st.get("currentStepIndex", 0) + 1, len(steps))

        if full or status.get("pauseConditions") or steps:
            self.world.change_status("rollouts", self.namespace, name, lambda obj: patch_status(obj["status"]))
        if ro["spec"].get("paused"):
            self.world.change_spec("rollouts", self.namespace, name, lambda obj: obj["spec"].update(paused=False))
        return self.world.store.must_get("rollouts", self.namespace, name)

    @on_loop
    def use_traffic_routing(self, service: str = "payment") -> Obj:
        """Give the Rollout's canary a traffic router (`canaryService`, `stableService`, `trafficRouting.nginx`): the
        controller then reports `status.canary.weights` and keeps the stable ReplicaSet at full size."""
        name = self._rollout_only(service)

        def change(obj: Obj) -> None:
            obj["spec"]["strategy"].setdefault("canary", {}).update(traffic_routing(service))

        return self.world.change_spec("rollouts", self.namespace, name, change)

    @on_loop
    def use_replica_canary(self, service: str = "payment") -> Obj:
        """Make the Rollout a basic canary (no trafficRouting, no canary/stable Services): the weight of each step is
        approximated by the number of canary and stable pods, and `status.canary.weights` is not set."""
        name = self._rollout_only(service)

        def change(obj: Obj) -> None:
            canary = obj["spec"]["strategy"].setdefault("canary", {})
            for key in ("trafficRouting", "canaryService", "stableService"):
                canary.pop(key, None)

        return self.world.change_spec("rollouts", self.namespace, name, change)

    @on_loop
    def degrade_canary(self, service: str = "payment", tag: str = "1.3.1-crashloop") -> Obj:
        """Start a canary whose pods crash-loop: the first step's canary pod never becomes available, and after
        progressDeadlineSeconds the Rollout shows Progressing False ProgressDeadlineExceeded, phase Degraded."""
        self._rollout_only(service)
        if "crashloop" not in tag and "nonexistent" not in tag:
            raise FaultError(f"a degraded canary needs a failing image ('crashloop' or 'nonexistent' in the tag), "
                             f"got {tag!r}")
        return self.set_image(service, tag)

    def _when(self, key: Any, condition: Callable[[], bool], action: Callable[[], None],
              interval: float = 0.02, attempts: int = 3000) -> None:
        """Run `action` once `condition` holds, checking every `interval` s (an operator watching the rollout)."""
        def check(left: int) -> None:
            if condition():
                action()
            elif left > 0:
                self.world.cluster.scheduler.later(interval, key, check, left - 1, replace=True)

        self.world.cluster.scheduler.later(interval, key, check, attempts, replace=True)

    # -- repairs ---------------------------------------------------------------------------------

    @on_loop
    def rollout_undo(self, service: str, to_revision: int = 0) -> str:
        """What `kubectl rollout undo` (or `kubectl argo rollouts undo`) does: put the pod template of the previous
        (or the given) revision back. Returns kubectl's message."""
        from .meta import POD_TEMPLATE_HASH, REVISION, ROLLOUT_POD_TEMPLATE_HASH, ROLLOUT_REVISION, templates_equal

        kind, name = self._workload(service)
        obj = self.world.store.must_get(kind, self.namespace, name)
        key = REVISION if kind == "deployments" else ROLLOUT_REVISION
        hash_label = POD_TEMPLATE_HASH if kind == "deployments" else ROLLOUT_POD_TEMPLATE_HASH
        by_revision = {}
        for rs in self.world.store.owned_by("replicasets", obj):
            value = (rs["metadata"].get("annotations") or {}).get(key, "0")
            by_revision[int(value) if value.isdigit() else 0] = rs
        revisions = sorted(by_revision)
        if to_revision:
            if to_revision not in by_revision:
                raise FaultError(f"unable to find specified revision {to_revision} in history")
            target = by_revision[to_revision]
        elif len(revisions) < 2:
            raise FaultError(f'no rollout history found for {kind[:-1]} "{name}"')
        else:
            target = by_revision[revisions[-2]]
        if templates_equal(target["spec"]["template"], obj["spec"]["template"]):
            return f"skipped rollback (current template already matches revision {to_revision})"
        template = copy.deepcopy(target["spec"]["template"])
        template["metadata"]["labels"].pop(hash_label, None)

        def change(o: Obj) -> None:
            o["spec"]["template"] = template

        self.world.change_spec(kind, self.namespace, name, change)
        return "rolled back"


__all__ = ["FAULTS", "FaultError", "Faults"]
