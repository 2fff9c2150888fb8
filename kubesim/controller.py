"""The Deployment controller, ported from kube-controller-manager's (pkg/controller/deployment) at the level of
detail that `kubectl rollout status|undo|history` and the checks observe: ReplicaSets per pod template named
`<deployment>-<pod-template-hash>` (replicaset_owner, shared with the Argo Rollouts controller), revisions (an old
ReplicaSet is reused and renumbered on rollback, its earlier numbers in revision-history), rolling update
fenceposts (maxSurge / maxUnavailable), Recreate, status and the Available / Progressing conditions, including
ProgressDeadlineExceeded.
"""

from __future__ import annotations

import copy

from .defaults import scaled
from .meta import DESIRED_REPLICAS, MAX_REPLICAS, POD_TEMPLATE_HASH, REVISION, REVISION_HISTORY, Obj, annotations_of
from .replicaset_owner import ReplicaSetOwner, get_condition, omit_zero, replica_counts, set_condition, status_sum

COMPONENT = "deployment-controller"
_SKIP_COPY = {
    "kubectl.kubernetes.io/last-applied-configuration", REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
}


def fenceposts(d: Obj) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) resolved against spec.replicas, as deploymentutil.ResolveFenceposts."""
    spec = d["spec"]
    strategy = spec.get("strategy") or {}
    replicas = spec.get("replicas", 1)
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0, 0
    rolling = strategy.get("rollingUpdate") or {}
    surge = scaled(rolling.get("maxSurge", "25%"), replicas, True)
    unavailable = scaled(rolling.get("maxUnavailable", "25%"), replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, replicas)


class DeploymentController(ReplicaSetOwner):
    COMPONENT = COMPONENT
    HASH_LABEL = POD_TEMPLATE_HASH
    REVISION = REVISION

    def desired_annotations(self, owner: Obj) -> dict[str, str]:
        surge, _ = fenceposts(owner)
        want = owner["spec"].get("replicas", 1)
        return {DESIRED_REPLICAS: str(want), MAX_REPLICAS: str(want + surge)}

    def scaled_event(self, owner: Obj, rs: Obj, old: int, new: int) -> None:
        direction = "up" if new > old else "down"
        self.event(owner, "ScalingReplicaSet",
                   f"Scaled {direction} replica set {rs['metadata']['name']} from {old} to {new}")

    # -- the sync loop -------------------------------------------------------------------------

    def sync(self, ns: str, name: str) -> None:
        d = self.c.store.get("deployments", ns, name)
        if d is None:
            return
        d.setdefault("status", {})
        self._check_paused_condition(d)
        if d["spec"].get("paused"):
            rses = self.owned_replicasets(d)
            new_rs = self.current_replicaset(d, rses)
            status = self._calculate_status(d, rses, new_rs)
            self._write_status(d, status)
            return
        recreate = (d["spec"].get("strategy") or {}).get("type") == "Recreate"
        new_rs = self._get_new_rs(d, create=not recreate)
        d = self.c.store.get("deployments", ns, name) or d
        old = [r for r in self.owned_replicasets(d) if new_rs is None or r["metadata"]["uid"] !=
               new_rs["metadata"]["uid"]]
        if recreate:
            new_rs = self._recreate(d, new_rs, old)
        else:
            assert new_rs is not None
            new_rs = self._reconcile_new(d, new_rs, old)
            self._reconcile_old(d, new_rs)
        d = self.c.store.get("deployments", ns, name) or d
        rses = self.owned_replicasets(d)
        new_rs = self.current_replicaset(d, rses)
        self._sync_rollout_status(d, rses, new_rs)
        d = self.c.store.get("deployments", ns, name) or d
        if self._complete(d, d.get("status") or {}):
            self._cleanup(d, [r for r in rses if new_rs is None or r["metadata"]["uid"] != new_rs["metadata"]["uid"]])

    def _check_paused_condition(self, d: Obj) -> None:
        cond = get_condition(d["status"], "Progressing")
        if cond is not None and cond.get("reason") == "ProgressDeadlineExceeded":
            return
        paused_cond = cond is not None and cond.get("reason") == "DeploymentPaused"
        if d["spec"].get("paused") and not paused_cond:
            set_condition(d["status"], self.condition("Progressing", "Unknown", "DeploymentPaused",
                                                      "Deployment is paused"))
        elif not d["spec"].get("paused") and paused_cond:
            set_condition(d["status"], self.condition("Progressing", "Unknown", "DeploymentResumed",
                                                      "Deployment is resumed"))
        else:
            return
        self.mark_progress(d)
        self.c.store.replace("deployments", d)

    # -- ReplicaSets ---------------------------------------------------------------------------

    def _rs_annotations(self, d: Obj, rs: Obj, new_revision: int, exists: bool) -> bool:
        """deploymentutil.SetNewReplicaSetAnnotations; True when something changed."""
        ann = rs["metadata"].setdefault("annotations", {})
        changed = False
        for k, v in annotations_of(d).items():
            if k not in _SKIP_COPY and ann.get(k) != v:
                ann[k], changed = v, True
        old = ann.get(REVISION)
        old_int = int(old) if old and old.isdigit() else 0
        if old_int < new_revision:
            ann[REVISION], changed = str(new_revision), True
            if old is not None:
                history = ann.get(REVISION_HISTORY)
                ann[REVISION_HISTORY] = f"{history},{old}" if history else old
        if not exists:
            ann.update(self.desired_annotations(d))
            changed = True
        return changed

    def _get_new_rs(self, d: Obj, create: bool) -> Obj | None:
        """The ReplicaSet for the current template; found (and renumbered) or created with the next revision."""
        rses = self.owned_replicasets(d)
        existing = self.current_replicaset(d, rses)
        old = [r for r in rses if existing is None or r["metadata"]["uid"] != existing["metadata"]["uid"]]
        new_revision = self.next_revision(old)
        deployment_changed = False
        if existing is not None:
            rs = existing
            if self._rs_annotations(d, rs, new_revision, exists=True):
                rs = self.c.store.replace("replicasets", rs)
            if annotations_of(d).get(REVISION) != annotations_of(rs).get(REVISION):
                d["metadata"].setdefault("annotations", {})[REVISION] = annotations_of(rs)[REVISION]
                deployment_changed = True
            if get_condition(d["status"], "Progressing") is None and "progressDeadlineSeconds" in d["spec"]:
                set_condition(d["status"], self.condition("Progressing", "True", "FoundNewReplicaSet",
                                                          f'Found new replica set "{rs["metadata"]["name"]}"'))
                self.mark_progress(d)
                deployment_changed = True
            if deployment_changed:
                self.c.store.replace("deployments", d)
            return rs
        if not create:
            return None
        rs = self.new_replicaset(d, self._new_rs_replicas(d, old, 0))
        if d["spec"].get("minReadySeconds"):
            rs["spec"]["minReadySeconds"] = d["spec"]["minReadySeconds"]
        self._rs_annotations(d, rs, new_revision, exists=False)
        created = self.create_replicaset(d, rs)
        d["metadata"].setdefault("annotations", {})[REVISION] = str(new_revision)
        if "progressDeadlineSeconds" in d["spec"]:
            set_condition(d["status"], self.condition("Progressing", "True", "NewReplicaSetCreated",
                                                      f'Created new replica set "{created["metadata"]["name"]}"'))
            self.mark_progress(d)
        self.c.store.replace("deployments", d)
        return self.fresh(created)

    def _new_rs_replicas(self, d: Obj, old: list[Obj], current: int) -> int:
        """deploymentutil.NewRSNewReplicas."""
        replicas = d["spec"].get("replicas", 1)
        if (d["spec"].get("strategy") or {}).get("type") == "Recreate":
            return replicas
        surge, _ = fenceposts(d)
        total = sum(r["spec"].get("replicas", 0) for r in old) + current
        if total >= replicas + surge:
            return current
        return current + min(replicas + surge - total, replicas - current)

    def _scale(self, d: Obj, rs: Obj, replicas: int) -> Obj:
        """Scale a ReplicaSet; its state afterwards."""
        return self.fresh(rs) if self.scale_replicaset(d, rs, replicas) else rs

    # -- strategies ----------------------------------------------------------------------------

    def _reconcile_new(self, d: Obj, new_rs: Obj, old: list[Obj]) -> Obj:
        want = d["spec"].get("replicas", 1)
        current = new_rs["spec"].get("replicas", 1)
        if current == want:
            return new_rs
        if current > want:
            return self._scale(d, new_rs, want)
        return self._scale(d, new_rs, self._new_rs_replicas(d, old, current))

    def _reconcile_old(self, d: Obj, new_rs: Obj) -> None:
        """rolloutRolling's reconcileOldReplicaSets: unhealthy old pods go first, then within maxUnavailable."""
        def olds() -> list[Obj]:
            return [r for r in self.owned_replicasets(d) if r["metadata"]["uid"] != new_rs["metadata"]["uid"]]

        old = olds()
        old_count = sum(r["spec"].get("replicas", 0) for r in old)
        if old_count == 0:
            return
        want = d["spec"].get("replicas", 1)
        _, max_unavailable = fenceposts(d)
        min_available = want - max_unavailable
        new_unavailable = new_rs["spec"].get("replicas", 0) - (new_rs.get("status") or {}).get("availableReplicas", 0)
        max_scaled_down = old_count + new_rs["spec"].get("replicas", 0) - min_available - new_unavailable
        if max_scaled_down <= 0:
            return
        cleaned = 0
        for rs in old:
            if cleaned >= max_scaled_down:
                break
            replicas, available = rs["spec"].get("replicas", 0), (rs.get("status") or {}).get("availableReplicas", 0)
            if replicas == 0 or replicas == available:
                continue
            n = min(max_scaled_down - cleaned, replicas - available)
            self._scale(d, rs, replicas - n)
            cleaned += n
        old = olds()
        new_rs = self.fresh(new_rs)
        available = status_sum("availableReplicas", old + [new_rs])
        if available <= min_available:
            return
        to_scale = available - min_available
        done = 0
        for rs in old:
            if done >= to_scale:
                break
            replicas = rs["spec"].get("replicas", 0)
            if replicas == 0:
                continue
            n = min(replicas, to_scale - done)
            self._scale(d, rs, replicas - n)
            done += n

    def _recreate(self, d: Obj, new_rs: Obj | None, old: list[Obj]) -> Obj | None:
        """Recreate: scale every old ReplicaSet to zero, wait until their pods are gone, then start the new one."""
        active = [r for r in old if r["spec"].get("replicas", 0) > 0]
        for rs in active:
            self._scale(d, rs, 0)
        if active:
            return new_rs
        if any(self.c.store.owned_by("pods", rs) for rs in old):
            return new_rs
        if new_rs is None:
            new_rs = self._get_new_rs(d, create=True)
            d.update(self.c.store.get("deployments", d["metadata"]["namespace"], d["metadata"]["name"]) or d)
        assert new_rs is not None
        want = d["spec"].get("replicas", 1)
        if new_rs["spec"].get("replicas", 0) != want:
            new_rs = self._scale(d, new_rs, want)
        return new_rs

    # -- status --------------------------------------------------------------------------------

    def _calculate_status(self, d: Obj, rses: list[Obj], new_rs: Obj | None) -> Obj:
        counts = replica_counts(rses, new_rs)
        available = counts["availableReplicas"]
        spec_total = sum(r["spec"].get("replicas", 0) for r in rses)
        status: Obj = {
            "observedGeneration": d["metadata"].get("generation", 1),
            **counts,
            "unavailableReplicas": max(spec_total - available, 0),
            "conditions": copy.deepcopy(d["status"].get("conditions") or []),
        }
        if d["status"].get("collisionCount"):
            status["collisionCount"] = d["status"]["collisionCount"]
        _, max_unavailable = fenceposts(d)
        if available >= d["spec"].get("replicas", 1) - max_unavailable:
            cond = self.condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        else:
            cond = self.condition("Available", "False", "MinimumReplicasUnavailable",
                                  "Deployment does not have minimum availability.")
        set_condition(status, cond)
        return status

    @staticmethod
    def _complete(d: Obj, status: Obj) -> bool:
        want = d["spec"].get("replicas", 1)
        return (status.get("updatedReplicas", 0) == want and status.get("replicas", 0) == want
                and status.get("availableReplicas", 0) == want
                and status.get("observedGeneration", 0) >= d["metadata"].get("generation", 1))

    @staticmethod
    def _progressing(d: Obj, new: Obj) -> bool:
        old = d.get("status") or {}
        old_old = old.get("replicas", 0) - old.get("updatedReplicas", 0)
        new_old = new.get("replicas", 0) - new.get("updatedReplicas", 0)
        return (new.get("updatedReplicas", 0) > old.get("updatedReplicas", 0) or new_old < old_old
                or new.get("readyReplicas", 0) > old.get("readyReplicas", 0)
                or new.get("availableReplicas", 0) > old.get("availableReplicas", 0))

    def _timed_out(self, d: Obj, status: Obj) -> bool:
        cond = get_condition(status, "Progressing")
        if cond is None or cond.get("reason") == "NewReplicaSetAvailable":
            return False
        if cond.get("reason") == "ProgressDeadlineExceeded":
            return True
        return self.deadline_passed(d)

    def _sync_rollout_status(self, d: Obj, rses: list[Obj], new_rs: Obj | None) -> None:
        """syncRolloutStatus: status counts plus the Progressing condition, timing out after the deadline."""
        status = self._calculate_status(d, rses, new_rs)
        has_deadline = "progressDeadlineSeconds" in d["spec"]
        if not has_deadline:
            status["conditions"] = [c for c in status["conditions"] if c["type"] != "Progressing"]
        current = get_condition(d["status"], "Progressing")
        complete_rollout = (status["replicas"] == status["updatedReplicas"] and current is not None
                            and current.get("reason") == "NewReplicaSetAvailable")
        rs_name = new_rs["metadata"]["name"] if new_rs else None
        if has_deadline and not complete_rollout:
            if self._complete(d, status):
                msg = (f'ReplicaSet "{rs_name}" has successfully progressed.' if rs_name
                       else f'Deployment "{d["metadata"]["name"]}" has successfully progressed.')
                set_condition(status, self.condition("Progressing", "True", "NewReplicaSetAvailable", msg))
            elif self._progressing(d, status):
                msg = (f'ReplicaSet "{rs_name}" is progressing.' if rs_name
                       else f'Deployment "{d["metadata"]["name"]}" is progressing.')
                cond = self.condition("Progressing", "True", "ReplicaSetUpdated", msg)
                if current is not None and current["status"] == "True":
                    cond["lastTransitionTime"] = current["lastTransitionTime"]
                status["conditions"] = [c for c in status["conditions"] if c["type"] != "Progressing"] + [cond]
                self.mark_progress(d)
            elif self._timed_out(d, status):
                msg = (f'ReplicaSet "{rs_name}" has timed out progressing.' if rs_name
                       else f'Deployment "{d["metadata"]["name"]}" has timed out progressing.')
                set_condition(status, self.condition("Progressing", "False", "ProgressDeadlineExceeded", msg))
        self._write_status(d, status)
        cond = get_condition(status, "Progressing")
        if (has_deadline and cond is not None and cond.get("reason") not in ("NewReplicaSetAvailable",
                                                                                "ProgressDeadlineExceeded")
                and not self._complete(d, status)):
            remaining = self.progress_since(d) + self.deadline(d) - self.c.clock.monotonic()
            self.c.scheduler.later(max(remaining, 0) + 0.02, ("deadline", d["metadata"]["uid"]), self.sync,
                                   d["metadata"]["namespace"], d["metadata"]["name"], replace=True)

    def _write_status(self, d: Obj, status: Obj) -> None:
        status = omit_zero(status, ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                                    "unavailableReplicas"))
        if status == d.get("status"):
            return
        d["status"] = status
        self.c.store.replace("deployments", d)

    def _cleanup(self, d: Obj, old: list[Obj]) -> None:
        """Delete the oldest fully scaled-down ReplicaSets beyond spec.revisionHistoryLimit."""
        limit = d["spec"].get("revisionHistoryLimit", 10)
        cleanable = [r for r in old if r["spec"].get("replicas", 0) == 0 and not (r.get("status") or {}).get("replicas")]
        cleanable.sort(key=lambda r: (self.revision(r), r["metadata"]["creationTimestamp"]))
        for rs in cleanable[: max(len(cleanable) - limit, 0)]:
            self.c.store.delete("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"])
