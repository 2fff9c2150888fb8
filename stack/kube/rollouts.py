"""An Argo Rollouts controller model for canary Rollouts with traffic routing (argoproj.io/v1alpha1).

What it keeps faithful (from argo-rollouts rollout/canary.go, sync.go, pause.go, utils/rollout): ReplicaSets
labelled `rollouts-pod-template-hash` with `rollout.argoproj.io/revision`; steps `setWeight` (canary replicas
ceil(weight × replicas / 100), the stable ReplicaSet kept at full size, `status.canary.weights` updated once the
canary pods are available) and `pause` (with a duration: `status.pauseConditions` [CanaryPauseStep] and
`controllerPause` until it elapses; without: until someone clears `pauseConditions`); promotion after the last
step (`stableRS` = `currentPodHash`, old pods scaled down); `status.abort` (set by `kubectl argo rollouts abort`)
sending all traffic back to stable and scaling the canary down; a template change resetting the step index and
clearing abort, and a rollback to the stable template skipping the steps; progressDeadlineSeconds; conditions
Available, Progressing, Paused, Completed and Healthy; and `status.phase` / `status.message` computed as
rolloututil.CalculateRolloutPhase does (Healthy, Progressing, Paused, Degraded).
"""

from __future__ import annotations

import copy
import json
import math
import re

from .cluster import Cluster
from .meta import (
    ROLLOUT_DESIRED_REPLICAS, ROLLOUT_POD_TEMPLATE_HASH, ROLLOUT_REVISION, Obj, annotations_of, fnv32a, owner_ref,
    rfc3339, safe_encode, selector_string, template_hash, templates_equal,
)
from .pods import ReplicaSetController

COMPONENT = "rollouts-controller"


def step_hash(steps: list) -> str:
    """conditions.ComputeStepHash: FNV-32a of the JSON steps, safely encoded."""
    return safe_encode(str(fnv32a(json.dumps(steps, separators=(",", ":")).encode())))


def parse_duration(value: object) -> float | None:
    """A pause duration ("30s", "5m", "1h", or seconds as an integer) in seconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    total, text = 0.0, str(value).strip()
    if text.isdigit():
        return float(text)
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s)", text):
        total += float(number) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
    return total


def step_string(step: Obj) -> str:
    if "setWeight" in step:
        return f"setWeight: {step['setWeight']}"
    if "pause" in step:
        duration = (step.get("pause") or {}).get("duration")
        return f"pause: {duration}" if duration is not None else "pause"
    return next(iter(step), "invalid")


def _revision(rs: Obj) -> int:
    value = annotations_of(rs).get(ROLLOUT_REVISION, "0")
    return int(value) if value.isdigit() else 0


def _pod_hash(rs: Obj | None) -> str:
    return ((rs or {}).get("metadata", {}).get("labels") or {}).get(ROLLOUT_POD_TEMPLATE_HASH, "")


def set_condition(status: Obj, cond: Obj) -> bool:
    """conditions.SetRolloutCondition: unchanged status, reason and message keep the old condition."""
    conditions = status.setdefault("conditions", [])
    current = next((c for c in conditions if c["type"] == cond["type"]), None)
    if current is not None and all(current.get(k) == cond.get(k) for k in ("status", "reason", "message")):
        return False
    if current is not None and current["status"] == cond["status"]:
        cond["lastTransitionTime"] = current["lastTransitionTime"]
    status["conditions"] = [c for c in conditions if c["type"] != cond["type"]] + [cond]
    return True


def get_condition(status: Obj, type_: str) -> Obj | None:
    return next((c for c in status.get("conditions") or [] if c["type"] == type_), None)


def calculate_phase(spec: Obj, status: Obj) -> tuple[str, str]:
    """rolloututil.CalculateRolloutPhase (canary)."""
    for cond in status.get("conditions") or []:
        if cond["type"] == "InvalidSpec":
            return "Degraded", f"InvalidSpec: {cond.get('message', '')}"
        if cond.get("reason") in ("RolloutAborted", "ProgressDeadlineExceeded"):
            return "Degraded", f"{cond['reason']}: {cond.get('message', '')}"
    if spec.get("paused"):
        return "Paused", "manually paused"
    for pause in status.get("pauseConditions") or []:
        return "Paused", pause["reason"]
    replicas = spec.get("replicas", 1)
    if status.get("updatedReplicas", 0) < replicas:
        return "Progressing", "more replicas need to be updated"
    if status.get("availableReplicas", 0) < status.get("updatedReplicas", 0):
        return "Progressing", "updated replicas are still becoming available"
    canary = (spec.get("strategy") or {}).get("canary")
    if canary is not None:
        if canary.get("trafficRouting") is None and status.get("replicas", 0) > status.get("updatedReplicas", 0):
            return "Progressing", "old replicas are pending termination"
        if not status.get("stableRS") or status.get("stableRS") != status.get("currentPodHash"):
            return "Progressing", "waiting for all steps to complete"
    return "Healthy", ""


class RolloutController:
    def __init__(self, cluster: Cluster, rs_controller: ReplicaSetController) -> None:
        self.c, self.rsc = cluster, rs_controller
        self._progress_at: dict[str, float] = {}
        self._pause_started: dict[tuple[str, str, int], float] = {}  # (uid, pod hash, step) -> monotonic start

    def forget(self) -> None:
        self._progress_at.clear()
        self._pause_started.clear()

    def _cond(self, type_: str, status: str, reason: str, message: str) -> Obj:
        now = rfc3339(self.c.clock.now())
        return {"type": type_, "status": status, "lastUpdateTime": now, "lastTransitionTime": now,
                "reason": reason, "message": message}

    def _event(self, ro: Obj, reason: str, message: str, type_: str = "Normal") -> None:
        self.c.recorder.record(ro, type_, reason, message, COMPONENT)

    # -- ReplicaSets ---------------------------------------------------------------------------

    def _scale(self, ro: Obj, rs: Obj, replicas: int) -> None:
        current = rs["spec"].get("replicas", 0)
        ann = rs["metadata"].setdefault("annotations", {})
        desired = str(ro["spec"].get("replicas", 1))
        if current == replicas and ann.get(ROLLOUT_DESIRED_REPLICAS) == desired:
            return
        rs["spec"]["replicas"] = replicas
        ann[ROLLOUT_DESIRED_REPLICAS] = desired
        self.c.store.replace("replicasets", rs)
        if current != replicas:
            direction = "up" if replicas > current else "down"
            self._event(ro, "ScalingReplicaSet",
                        f"Scaled {direction} ReplicaSet {rs['metadata']['name']} (revision {_revision(rs)}) "
                        f"from {current} to {replicas}")
        self.rsc.sync(rs["metadata"]["namespace"], rs["metadata"]["name"])

    def _desired_rs(self, ro: Obj, rses: list[Obj], initial_replicas: int) -> tuple[Obj, bool]:
        """Find (and renumber) or create the ReplicaSet of the current template; True when created."""
        existing = next((r for r in rses if templates_equal(r["spec"]["template"], ro["spec"]["template"])), None)
        others = [r for r in rses if existing is None or r["metadata"]["uid"] != existing["metadata"]["uid"]]
        new_revision = max((_revision(r) for r in others), default=0) + 1
        if existing is not None:
            if _revision(existing) < new_revision:
                existing["metadata"].setdefault("annotations", {})[ROLLOUT_REVISION] = str(new_revision)
                existing = self.c.store.replace("replicasets", existing)
            return existing, False
        template = copy.deepcopy(ro["spec"]["template"])
        pod_hash = template_hash(template, (ro.get("status") or {}).get("collisionCount", 0))
        template.setdefault("metadata", {}).setdefault("labels", {})[ROLLOUT_POD_TEMPLATE_HASH] = pod_hash
        selector = copy.deepcopy(ro["spec"]["selector"])
        selector.setdefault("matchLabels", {})[ROLLOUT_POD_TEMPLATE_HASH] = pod_hash
        rs: Obj = {
            "kind": "ReplicaSet",
            "apiVersion": "apps/v1",
            "metadata": {
                "name": f"{ro['metadata']['name']}-{pod_hash}",
                "namespace": ro["metadata"]["namespace"],
                "labels": dict(template["metadata"]["labels"]),
                "annotations": {ROLLOUT_REVISION: str(new_revision),
                                ROLLOUT_DESIRED_REPLICAS: str(ro["spec"].get("replicas", 1))},
                "ownerReferences": [owner_ref(ro)],
            },
            "spec": {"replicas": initial_replicas, "selector": selector, "template": template},
        }
        created = self.c.store.create("replicasets", rs, timestamp=self.c.clock.now())
        self._event(ro, "NewReplicaSetCreated", f"Created ReplicaSet {created['metadata']['name']} "
                    f"(revision {new_revision})")
        if initial_replicas:
            self._event(ro, "ScalingReplicaSet", f"Scaled up ReplicaSet {created['metadata']['name']} "
                        f"(revision {new_revision}) from 0 to {initial_replicas}")
        self.rsc.sync(created["metadata"]["namespace"], created["metadata"]["name"])
        return self.c.store.must_get("replicasets", created["metadata"]["namespace"], created["metadata"]["name"]), True

    # -- the sync loop -------------------------------------------------------------------------

    def sync(self, ns: str, name: str) -> None:
        ro = self.c.store.get("rollouts", ns, name)
        if ro is None:
            return
        spec = ro["spec"]
        old_status = ro.get("status") or {}
        status: Obj = copy.deepcopy(old_status)
        uid = ro["metadata"]["uid"]
        replicas = spec.get("replicas", 1)
        canary = (spec.get("strategy") or {}).get("canary") or {}
        steps = canary.get("steps") or []
        rses = self.c.store.owned_by("replicasets", ro)
        first_deploy = not status.get("stableRS")
        new_rs, created = self._desired_rs(ro, rses, replicas if first_deploy else 0)
        new_hash = _pod_hash(new_rs)
        if annotations_of(ro).get(ROLLOUT_REVISION) != annotations_of(new_rs).get(ROLLOUT_REVISION):
            ro["metadata"].setdefault("annotations", {})[ROLLOUT_REVISION] = annotations_of(new_rs)[ROLLOUT_REVISION]
            ro = self.c.store.replace("rollouts", ro)
            if created:
                self._event(ro, "RolloutUpdated", f"Rollout updated to revision {_revision(new_rs)}")
        stable_hash = status.get("stableRS") or new_hash
        status["stableRS"] = stable_hash
        if status.get("currentPodHash") != new_hash or status.get("currentStepHash") != step_hash(steps):
            previous = status.get("currentPodHash")
            for key in ("pauseConditions", "abortedAt"):
                status.pop(key, None)
            status["abort"] = status["controllerPause"] = False
            status["currentPodHash"], status["currentStepHash"] = new_hash, step_hash(steps)
            status["currentStepIndex"] = len(steps) if new_hash == stable_hash else 0
            if previous and previous != new_hash and new_hash == stable_hash and steps:
                self._event(ro, "SkipSteps", "Rollback to stable ReplicaSets")
            if created or previous != new_hash:
                set_condition(status, self._cond("Progressing", "True", "NewReplicaSetCreated" if created else
                                                 "FoundNewReplicaSet", f'{"Created" if created else "Found"} new '
                                                 f'replica set "{new_rs["metadata"]["name"]}"'))
                self._progress_at[uid] = self.c.clock.monotonic()
        if status.get("abort") and new_hash == stable_hash:
            status["abort"] = False
            status.pop("abortedAt", None)
        by_hash = {_pod_hash(r): r for r in self.c.store.owned_by("replicasets", ro)}
        stable_rs = by_hash.get(stable_hash, new_rs)
        if status.get("abort"):
            self._aborted(ro, status, new_rs, stable_rs, canary)
        elif not spec.get("paused"):
            if new_hash == stable_hash:
                self._settle_stable(ro, status, new_rs, canary, len(steps))
            else:
                self._run_steps(ro, status, new_rs, stable_rs, canary, steps)
        self._finish(ro, old_status, status, new_rs, canary)

    def _weights(self, status: Obj, canary: Obj, weight: int, canary_hash: str, stable_hash: str) -> None:
        if canary.get("trafficRouting") is None:
            return
        status.setdefault("canary", {})["weights"] = {
            "canary": {"weight": weight, "serviceName": canary.get("canaryService", ""), "podTemplateHash": canary_hash},
            "stable": {"weight": 100 - weight, "serviceName": canary.get("stableService", ""),
                       "podTemplateHash": stable_hash},
        }
        for side in ("canary", "stable"):
            if not status["canary"]["weights"][side]["serviceName"]:
                del status["canary"]["weights"][side]["serviceName"]

    def _scale_down_later(self, ro: Obj, rs: Obj, seconds: float) -> None:
        ns, name, rs_name = ro["metadata"]["namespace"], ro["metadata"]["name"], rs["metadata"]["name"]

        def scale_down() -> None:
            current_ro = self.c.store.get("rollouts", ns, name)
            current_rs = self.c.store.get("replicasets", ns, rs_name)
            if current_ro is None or current_rs is None:
                return
            st = current_ro.get("status") or {}
            if _pod_hash(current_rs) in (st.get("stableRS"), st.get("currentPodHash")) and not st.get("abort"):
                return
            self._scale(current_ro, current_rs, 0)

        self.c.scheduler.later(self.c.settings.scaled(seconds), ("scaledown", rs["metadata"]["uid"]), scale_down)

    def _settle_stable(self, ro: Obj, status: Obj, new_rs: Obj, canary: Obj, step_count: int) -> None:
        """Fully promoted: the stable ReplicaSet at full size, every other one scaled down after the delay."""
        self._scale(ro, new_rs, ro["spec"].get("replicas", 1))
        status["currentStepIndex"] = step_count
        self._weights(status, canary, 0, status["currentPodHash"], status["stableRS"])
        for rs in self.c.store.owned_by("replicasets", ro):
            if rs["metadata"]["uid"] != new_rs["metadata"]["uid"] and rs["spec"].get("replicas", 0):
                self._scale_down_later(ro, rs, canary.get("scaleDownDelaySeconds", 30))

    def _aborted(self, ro: Obj, status: Obj, new_rs: Obj, stable_rs: Obj, canary: Obj) -> None:
        if not status.get("abortedAt"):
            status["abortedAt"] = rfc3339(self.c.clock.now())
            message = f"Rollout aborted update to revision {_revision(new_rs)}"
            self._event(ro, "RolloutAborted", message, "Warning")
        status["currentStepIndex"] = 0
        status.pop("pauseConditions", None)
        status["controllerPause"] = False
        self._scale(ro, stable_rs, ro["spec"].get("replicas", 1))
        self._weights(status, canary, 0, status["currentPodHash"], status["stableRS"])
        if new_rs["spec"].get("replicas", 0):
            self._scale_down_later(ro, new_rs, canary.get("abortScaleDownDelaySeconds", 30))

    def _run_steps(self, ro: Obj, status: Obj, new_rs: Obj, stable_rs: Obj, canary: Obj, steps: list) -> None:
        uid, replicas = ro["metadata"]["uid"], ro["spec"].get("replicas", 1)
        index = status.get("currentStepIndex", 0)
        weights = (status.get("canary") or {}).get("weights") or {}
        weight = weights.get("canary", {}).get("weight", 0) if weights.get("canary", {}).get("podTemplateHash") == \
            status["currentPodHash"] else 0
        self._scale(ro, stable_rs, replicas)
        while index < len(steps):
            step = steps[index]
            if "setWeight" in step:
                target = int(step["setWeight"])
                want = math.ceil(target * replicas / 100)
                self._scale(ro, new_rs, want)
                new_rs = self.c.store.must_get("replicasets", new_rs["metadata"]["namespace"],
                                               new_rs["metadata"]["name"])
                if (new_rs.get("status") or {}).get("availableReplicas", 0) < want:
                    break
                if weight != target:
                    self._event(ro, "TrafficWeightUpdated", f"Traffic weight updated from {weight} to {target}")
                weight = target
            elif "pause" in step:
                key = (uid, status["currentPodHash"], index)
                duration = parse_duration((step.get("pause") or {}).get("duration"))
                if status.get("controllerPause") and not status.get("pauseConditions"):
                    status["controllerPause"] = False  # someone cleared the pause (kubectl argo rollouts promote)
                    self._pause_started.pop(key, None)
                elif key not in self._pause_started:
                    self._pause_started[key] = self.c.clock.monotonic()
                    status["pauseConditions"] = [{"reason": "CanaryPauseStep",
                                                  "startTime": rfc3339(self.c.clock.now())}]
                    status["controllerPause"] = True
                    if duration is not None:
                        self.c.scheduler.later(self.c.settings.scaled(duration) + 0.005, ("pause", uid), self.sync,
                                               ro["metadata"]["namespace"], ro["metadata"]["name"], replace=True)
                    break
                elif duration is None or (self.c.clock.monotonic() - self._pause_started[key]
                                          < self.c.settings.scaled(duration)):
                    break
                else:
                    status.pop("pauseConditions", None)
                    status["controllerPause"] = False
            index += 1
            self._event(ro, "RolloutStepCompleted", f"Rollout step {index}/{len(steps)} completed "
                        f"({step_string(step)})")
        status["currentStepIndex"] = index
        self._weights(status, canary, weight, status["currentPodHash"], status["stableRS"])
        if index >= len(steps):
            self._scale(ro, new_rs, replicas)
            new_rs = self.c.store.must_get("replicasets", new_rs["metadata"]["namespace"], new_rs["metadata"]["name"])
            if (new_rs.get("status") or {}).get("availableReplicas", 0) >= replicas:
                status["stableRS"] = status["currentPodHash"]
                status.pop("pauseConditions", None)
                status["controllerPause"] = False
                self._event(ro, "RolloutCompleted", f"Rollout completed update to revision {_revision(new_rs)} "
                            f"({status['currentPodHash']}): Completed all {len(steps)} canary steps")
                self._settle_stable(ro, status, new_rs, canary, len(steps))

    # -- status --------------------------------------------------------------------------------

    def _finish(self, ro: Obj, old_status: Obj, status: Obj, new_rs: Obj, canary: Obj) -> None:
        spec, uid = ro["spec"], ro["metadata"]["uid"]
        replicas = spec.get("replicas", 1)
        rses = self.c.store.owned_by("replicasets", ro)
        new_rs = next((r for r in rses if r["metadata"]["uid"] == new_rs["metadata"]["uid"]), new_rs)

        def total(field: str, items: list[Obj]) -> int:
            return sum((r.get("status") or {}).get(field, 0) for r in items)

        status.update({
            "replicas": total("replicas", rses),
            "updatedReplicas": total("replicas", [new_rs]),
            "readyReplicas": total("readyReplicas", rses),
            "availableReplicas": total("availableReplicas", rses),
            "HPAReplicas": total("replicas", rses),
            "selector": selector_string(spec["selector"]),
            "observedGeneration": str(ro["metadata"].get("generation", 1)),
        })
        status.setdefault("blueGreen", {})
        status.setdefault("canary", {})
        paused = bool(status.get("pauseConditions")) or bool(spec.get("paused"))
        aborted = bool(status.get("abort"))
        rs_name = new_rs["metadata"]["name"]
        progress = get_condition(old_status, "Progressing")
        if paused and not aborted and (progress is None or progress.get("reason") != "RolloutPaused") \
                and status.get("stableRS") != status.get("currentPodHash"):
            set_condition(status, self._cond("Progressing", "Unknown", "RolloutPaused", "Rollout is paused"))
        elif not paused and progress is not None and progress.get("reason") == "RolloutPaused":
            set_condition(status, self._cond("Progressing", "Unknown", "RolloutResumed", "Rollout is resumed"))
            self._progress_at[uid] = self.c.clock.monotonic()
        paused_cond = get_condition(old_status, "Paused")
        if paused != (paused_cond is not None and paused_cond["status"] == "True") and not aborted:
            # Argo writes the same reason and message whether the condition is True or False
            set_condition(status, self._cond("Paused", "True" if paused else "False", "RolloutPaused",
                                             "Rollout is paused"))
        healthy = self._healthy(ro, status)
        if not paused and healthy:
            set_condition(status, self._cond("Healthy", "True", "RolloutHealthy", "Rollout is healthy"))
        else:
            set_condition(status, self._cond("Healthy", "False", "RolloutHealthy", "Rollout is not healthy"))
        if aborted:
            set_condition(status, self._cond("Progressing", "False", "RolloutAborted",
                                             f"Rollout aborted update to revision {_revision(new_rs)}"))
        current = get_condition(status, "Progressing")
        if not aborted and not paused and current is not None and current.get("reason") != "RolloutPaused":
            if healthy:
                set_condition(status, self._cond("Progressing", "True", "NewReplicaSetAvailable",
                                                 f'ReplicaSet "{rs_name}" has successfully progressed.'))
            elif self._made_progress(old_status, status):
                cond = self._cond("Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
                if current["status"] == "True":
                    cond["lastTransitionTime"] = current["lastTransitionTime"]
                status["conditions"] = [c for c in status["conditions"] if c["type"] != "Progressing"] + [cond]
                self._progress_at[uid] = self.c.clock.monotonic()
            elif self._timed_out(ro, status):
                set_condition(status, self._cond("Progressing", "False", "ProgressDeadlineExceeded",
                                                 f'ReplicaSet "{rs_name}" has timed out progressing.'))
        if (sum((r.get("status") or {}).get("availableReplicas", 0) for r in rses)) >= replicas:
            set_condition(status, self._cond("Available", "True", "AvailableReason", "Rollout has minimum availability"))
        else:
            set_condition(status, self._cond("Available", "False", "AvailableReason",
                                             "Rollout does not have minimum availability"))
        completed = bool(status.get("stableRS")) and status.get("stableRS") == status.get("currentPodHash")
        set_condition(status, self._cond("Completed", "True" if completed else "False", "RolloutCompleted",
                                         "RolloutCompleted"))
        status["phase"], message = calculate_phase(spec, status)
        if message:
            status["message"] = message
        else:
            status.pop("message", None)
        for key in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "HPAReplicas", "abort",
                    "controllerPause"):
            if not status.get(key):
                status.pop(key, None)
        if status != old_status:
            ro = self.c.store.must_get("rollouts", ro["metadata"]["namespace"], ro["metadata"]["name"])
            ro["status"] = status
            self.c.store.replace("rollouts", ro)
        cond = get_condition(status, "Progressing")
        if (cond is not None and cond.get("reason") in ("ReplicaSetUpdated", "NewReplicaSetCreated",
                                                         "FoundNewReplicaSet", "RolloutResumed")
                and not paused and not aborted):
            since = self._progress_at.setdefault(uid, self.c.clock.monotonic())
            remaining = since + self._deadline(ro) - self.c.clock.monotonic()
            self.c.scheduler.later(max(remaining, 0) + 0.02, ("deadline", uid), self.sync,
                                   ro["metadata"]["namespace"], ro["metadata"]["name"], replace=True)

    def _deadline(self, ro: Obj) -> float:
        return self.c.settings.scaled(ro["spec"].get("progressDeadlineSeconds", 600))

    def _timed_out(self, ro: Obj, status: Obj) -> bool:
        cond = get_condition(status, "Progressing")
        if cond is None or cond.get("reason") in ("RolloutAborted", "RolloutPaused"):
            return False
        if cond.get("reason") == "ProgressDeadlineExceeded":
            return True
        since = self._progress_at.setdefault(ro["metadata"]["uid"], self.c.clock.monotonic())
        return self.c.clock.monotonic() - since > self._deadline(ro)

    @staticmethod
    def _made_progress(old: Obj, new: Obj) -> bool:
        old_old = old.get("replicas", 0) - old.get("updatedReplicas", 0)
        new_old = new.get("replicas", 0) - new.get("updatedReplicas", 0)
        return (new.get("updatedReplicas", 0) > old.get("updatedReplicas", 0) or new_old < old_old
                or new.get("readyReplicas", 0) > old.get("readyReplicas", 0)
                or new.get("availableReplicas", 0) > old.get("availableReplicas", 0)
                or new.get("currentStepIndex") != old.get("currentStepIndex"))

    @staticmethod
    def _healthy(ro: Obj, status: Obj) -> bool:
        """conditions.RolloutHealthy for a canary."""
        replicas = ro["spec"].get("replicas", 1)
        steps = (((ro["spec"].get("strategy") or {}).get("canary") or {}).get("steps")) or []
        executed = not steps or status.get("currentStepIndex") == len(steps)
        stable = bool(status.get("stableRS")) and status.get("stableRS") == status.get("currentPodHash")
        return (status.get("updatedReplicas", 0) == replicas and status.get("availableReplicas", 0) == replicas
                and status.get("replicas", 0) == replicas and executed and stable)
