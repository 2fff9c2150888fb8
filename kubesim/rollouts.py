"""An Argo Rollouts controller model for canary Rollouts (argoproj.io/v1alpha1), basic and traffic-routed.

Written from Argo Rollouts' documentation and source (rollout/canary.go, pause.go, sync.go, trafficrouting.go,
replicaset.go, utils/replicaset/canary.go, utils/conditions, utils/rollout/rolloututil.go). Like the real
controller it does one reconcile per sync and is synced again whenever the Rollout or one of its ReplicaSets
changes, so a canary moves one step at a time.

Two kinds of canary, as Argo tells them apart by `spec.strategy.canary.trafficRouting`:

- basic (no trafficRouting): the pods *are* the traffic split. Each setWeight scales the canary and the stable
  ReplicaSets to the counts nearest the weight (approximateWeightedCanaryStableReplicaCounts: ties round up, one
  surge pod when that gets closer), within maxSurge / maxUnavailable (default 25% each); older ReplicaSets go to
  zero. `status.canary.weights` is never set.
- traffic-routed: a traffic provider splits the requests. The canary ReplicaSet gets ceil(weight x replicas / 100)
  pods (or what a setCanaryScale step says), the stable keeps all of its pods, and once the canary pods of a step
  are available the weight is "set on the provider": `status.canary.weights` {canary, stable} with weight,
  serviceName and podTemplateHash. Old ReplicaSets are scaled down scaleDownDelaySeconds after promotion, an
  aborted canary abortScaleDownDelaySeconds after the abort.

Steps: setWeight, setCanaryScale, pause (`status.pauseConditions` [{reason: CanaryPauseStep, startTime}] and
`status.controllerPause`; a duration ends it, or a client clearing the pause conditions does, as `kubectl argo
rollouts promote` does); any other step kind completes at once (no AnalysisRuns or Experiments are simulated).
After the last step the canary is promoted (`stableRS` = `currentPodHash`). `status.promoteFull` (promote --full)
skips the remaining steps; `spec.paused` halts the Rollout. `status.abort` (set by `kubectl argo rollouts abort`):
desired weight 0, canary scaled down, `abortedAt`, currentStepIndex 0, Progressing False RolloutAborted, phase
Degraded; `status.abort=false` (retry) runs the steps again from the first, Progressing Unknown RolloutRetry. A new
pod template or new steps reset the step index and clear pause, abort and promoteFull; going back to the stable
template skips the steps (SkipSteps). ReplicaSets are `<rollout>-<hash>`, labelled `rollouts-pod-template-hash`
(replicaset_owner, shared with the Deployment controller).
Conditions Available, Progressing (with progressDeadlineSeconds), Paused, Completed and Healthy; `status.phase` /
`status.message` as rolloututil.CalculateRolloutPhase computes them (Healthy, Progressing, Paused, Degraded).
"""

from __future__ import annotations

import copy
import json
import math
import re

from .cluster import Cluster
from .meta import (
    ROLLOUT_DESIRED_REPLICAS, ROLLOUT_POD_TEMPLATE_HASH, ROLLOUT_REVISION, Obj, annotations_of, fnv32a, rfc3339,
    safe_encode, selector_string,
)
from .replicaset_controller import ReplicaSetController
from .replicaset_owner import ReplicaSetOwner, get_condition, omit_zero, replica_counts, set_condition, status_sum

COMPONENT = "rollouts-controller"
MAX_WEIGHT = 100
DEFAULT_SCALE_DOWN_DELAY = 30
DEFAULT_ABORT_SCALE_DOWN_DELAY = 30
PAUSE_REASON = "CanaryPauseStep"


# -- pure helpers (unit-tested) ------------------------------------------------------------------


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
    """rolloututil.CanaryStepString, as the RolloutStepCompleted event shows a step."""
    if "setWeight" in step:
        return f"setWeight: {step['setWeight']}"
    if "pause" in step:
        duration = (step.get("pause") or {}).get("duration")
        return f"pause: {duration}" if duration is not None else "pause"
    if "setCanaryScale" in step:
        return f"setCanaryScale: {json.dumps(step['setCanaryScale'], separators=(',', ':'))}"
    return next(iter(step), "invalid")


def is_traffic_routed(spec: Obj) -> bool:
    return (((spec.get("strategy") or {}).get("canary") or {}).get("trafficRouting")) is not None


def _intstr(value: object, total: int, round_up: bool) -> int:
    """intstrutil.GetValueFromIntOrPercent as Argo calls it: any string is a percentage ("25" = "25%")."""
    if isinstance(value, int):
        return value
    percent = float(str(value).rstrip("%"))
    exact = percent * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def fenceposts(spec: Obj) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) of a canary, resolved against spec.replicas (defaults 25% and 25%)."""
    canary = (spec.get("strategy") or {}).get("canary") or {}
    replicas = spec.get("replicas", 1)
    surge = _intstr(canary.get("maxSurge", "25%"), replicas, True)
    unavailable = _intstr(canary.get("maxUnavailable", "25%"), replicas, False) if replicas else 0
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def current_set_weight(steps: list, index: int | None, aborted: bool = False) -> int:
    """replicasetutil.GetCurrentSetWeight: 0 when aborted, 100 past the last step, else the last setWeight at or
    before the current step (0 if none)."""
    if aborted:
        return 0
    index = index or 0
    if not steps or index >= len(steps):
        return MAX_WEIGHT
    for step in reversed(steps[: index + 1]):
        if "setWeight" in step:
            return int(step["setWeight"])
    return 0


def weighted_counts(replicas: int, weight: int, max_surge: int) -> tuple[int, int]:
    """approximateWeightedCanaryStableReplicaCounts: (canary, stable) pods whose split is nearest `weight` %.

    Candidates are the ceiling and the floor of replicas x weight / 100 over spec.replicas pods, and over one surge
    pod more when maxSurge allows; a weight strictly between 0 and 100 never gets 0 canary pods out of 2 or more,
    and when floor and ceiling are equally near the ceiling wins.
    """
    if replicas == 0:
        return 0, 0
    ceil_count = -(-replicas * weight // MAX_WEIGHT)
    floor_count = replicas * weight // MAX_WEIGHT

    def tied(total: int) -> bool:
        return 2 * ((total * weight) % MAX_WEIGHT) == MAX_WEIGHT

    zero_ok = weight in (0, MAX_WEIGHT) or (replicas == 1 and max_surge == 0)
    options: list[tuple[int, int]] = []
    if ceil_count < replicas or zero_ok:
        options.append((ceil_count, replicas))
    if not tied(replicas) and (floor_count != 0 or zero_ok):
        options.append((floor_count, replicas))
    if max_surge > 0:
        options.append((ceil_count, replicas + 1))
        if not tied(replicas + 1) and (floor_count != 0 or zero_ok):
            options.append((floor_count, replicas + 1))
    if not options:
        return 0, replicas
    canary, total = min(options, key=lambda o: abs(o[0] * MAX_WEIGHT / o[1] - weight))  # first of equals wins
    return canary, total - canary


def _spec_replicas(rs: Obj | None) -> int:
    return (rs or {}).get("spec", {}).get("replicas", 0) if rs is not None else 0


def _available(rs: Obj | None) -> int:
    return ((rs or {}).get("status") or {}).get("availableReplicas", 0)


def _for_scale_down(rs: Obj | None, ignore_availability: bool) -> int:
    """replicasetutil.GetReplicasForScaleDown."""
    if rs is None:
        return 0
    spec, available = _spec_replicas(rs), _available(rs)
    if spec < available or ignore_availability:
        return spec
    return available


def _within_limits(drain: Obj | None, adjust: Obj | None, drain_count: int, adjust_count: int, max_total: int,
                   min_available: int) -> tuple[int, int]:
    """adjustReplicaWithinLimits: keep the pair within maxSurge without going below the minimum available."""
    over = max(0, adjust_count + drain_count - max_total)
    available = min(_available(drain), drain_count) if drain is not None else 0
    if adjust is not None:
        adjust_count -= over
        available += min(_available(adjust), adjust_count)
        extra = max(0, _available(adjust) - adjust_count)
        adjust_count += min(extra, max(0, min_available - available))
        drain_count -= max(0, adjust_count + drain_count - max_total)
    return drain_count, adjust_count


def basic_canary_counts(spec: Obj, new_rs: Obj, stable_rs: Obj | None, others: list[Obj], weight: int) -> tuple[int, int]:
    """CalculateReplicaCountsForBasicCanary: the (canary, stable) replica counts to scale to now, on the way to
    weighted_counts(), surging up to maxSurge and scaling down no further than maxUnavailable allows."""
    replicas = spec.get("replicas", 1)
    surge, unavailable = fenceposts(spec)
    want_new, want_stable = weighted_counts(replicas, weight, surge)
    distinct = stable_rs is not None and stable_rs["metadata"]["uid"] != new_rs["metadata"]["uid"]
    if not distinct:
        stable_rs = None
        want_new, want_stable = replicas, 0
    cur_new, cur_stable = _spec_replicas(new_rs), _spec_replicas(stable_rs)
    new_count, stable_count = cur_new, cur_stable
    max_total = replicas + surge
    room = max_total - (cur_new + cur_stable + sum(_spec_replicas(r) for r in others))
    if stable_rs is not None and cur_stable < want_stable and room > 0:
        stable_count = min(want_stable, cur_stable + room)
        room -= stable_count - cur_stable
    if cur_new < want_new and room > 0:
        new_count = min(want_new, cur_new + room)
    if sum(_spec_replicas(r) for r in others) > 0:
        return new_count, stable_count  # older ReplicaSets are scaled down first
    min_available = replicas - unavailable
    increasing = want_new >= cur_new
    pool = _for_scale_down(new_rs, not increasing) + _for_scale_down(stable_rs, increasing)
    if pool <= min_available:
        return new_count, stable_count
    excess = pool - min_available
    if not increasing:
        if cur_new > want_new:
            new_count = max(want_new, cur_new - excess)
        new_count, stable_count = _within_limits(new_rs, stable_rs, new_count, stable_count, max_total, min_available)
    elif stable_rs is not None:
        if cur_stable > want_stable:
            stable_count = max(want_stable, cur_stable - excess)
        stable_count, new_count = _within_limits(stable_rs, new_rs, stable_count, new_count, max_total,
                                                 min_available)
    return new_count, stable_count


def _pod_hash(rs: Obj | None) -> str:
    return ((rs or {}).get("metadata", {}).get("labels") or {}).get(ROLLOUT_POD_TEMPLATE_HASH, "")


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


# -- the controller ------------------------------------------------------------------------------


class RolloutController(ReplicaSetOwner):
    COMPONENT = COMPONENT
    HASH_LABEL = ROLLOUT_POD_TEMPLATE_HASH
    REVISION = ROLLOUT_REVISION

    def __init__(self, cluster: Cluster, rs_controller: ReplicaSetController) -> None:
        super().__init__(cluster, rs_controller)
        self._pause_started: dict[tuple[str, str, int], float] = {}  # (uid, pod hash, step) -> monotonic start

    def forget(self) -> None:
        super().forget()
        self._pause_started.clear()

    def desired_annotations(self, owner: Obj) -> dict[str, str]:
        return {ROLLOUT_DESIRED_REPLICAS: str(owner["spec"].get("replicas", 1))}

    def created_event(self, owner: Obj, rs: Obj) -> None:
        self.event(owner, "NewReplicaSetCreated", f"Created ReplicaSet {rs['metadata']['name']} "
                   f"(revision {self.revision(rs)})")

    def scaled_event(self, owner: Obj, rs: Obj, old: int, new: int) -> None:
        direction = "up" if new > old else "down"
        self.event(owner, "ScalingReplicaSet",
                   f"Scaled {direction} ReplicaSet {rs['metadata']['name']} (revision {self.revision(rs)}) "
                   f"from {old} to {new}")

    def _later(self, ro: Obj, key: str, seconds: float) -> None:
        self.c.scheduler.later(max(seconds, 0) + 0.005, (key, ro["metadata"]["uid"]), self.sync,
                               ro["metadata"]["namespace"], ro["metadata"]["name"], replace=True)

    # -- ReplicaSets ---------------------------------------------------------------------------

    def _scale(self, ro: Obj, rs: Obj, replicas: int) -> bool:
        """Scale a ReplicaSet (and record it as Argo does); True when its replica count changed."""
        before = rs["spec"].get("replicas", 0)
        return self.scale_replicaset(ro, rs, replicas) and before != replicas

    def _desired_rs(self, ro: Obj, rses: list[Obj], initial_replicas: int) -> tuple[Obj, bool]:
        """Find (and renumber) or create the ReplicaSet of the current template; True when created."""
        existing = self.current_replicaset(ro, rses)
        others = [r for r in rses if existing is None or r["metadata"]["uid"] != existing["metadata"]["uid"]]
        new_revision = self.next_revision(others)
        if existing is not None:
            if self.revision(existing) < new_revision:
                existing["metadata"].setdefault("annotations", {})[ROLLOUT_REVISION] = str(new_revision)
                existing = self.c.store.replace("replicasets", existing)
            return existing, False
        rs = self.new_replicaset(ro, initial_replicas, {ROLLOUT_REVISION: str(new_revision),
                                                        **self.desired_annotations(ro)})
        return self.create_replicaset(ro, rs), True

    def _scale_down_later(self, ro: Obj, rs: Obj, seconds: float) -> None:
        """The scale-down-deadline of a traffic-routed canary: scale `rs` to zero after `seconds` (simulated),
        unless by then it is the stable or the current ReplicaSet of a Rollout that is not aborted."""
        ns, name, rs_name = ro["metadata"]["namespace"], ro["metadata"]["name"], rs["metadata"]["name"]

        def scale_down() -> None:
            current_ro = self.c.store.get("rollouts", ns, name)
            current_rs = self.c.store.get("replicasets", ns, rs_name)
            if current_ro is None or current_rs is None:
                return
            st = current_ro.get("status") or {}
            keep = {st.get("stableRS")} if st.get("abort") else {st.get("stableRS"), st.get("currentPodHash")}
            if _pod_hash(current_rs) in keep:
                return
            self._scale(current_ro, current_rs, 0)

        # a deadline already pending stays (the scheduler keeps the first call under a key)
        self.c.scheduler.later(self.c.settings.scaled(seconds), ("scaledown", rs["metadata"]["uid"]), scale_down)

    # -- the reconcile -------------------------------------------------------------------------

    def sync(self, ns: str, name: str) -> None:
        ro = self.c.store.get("rollouts", ns, name)
        if ro is None:
            return
        spec = ro["spec"]
        old_status = ro.get("status") or {}
        status: Obj = copy.deepcopy(old_status)
        canary = (spec.get("strategy") or {}).get("canary") or {}
        steps = canary.get("steps") or []
        replicas = spec.get("replicas", 1)
        rses = self.owned_replicasets(ro)
        first_deploy = not status.get("stableRS")
        new_rs, created = self._desired_rs(ro, rses, replicas if first_deploy else 0)
        new_hash = _pod_hash(new_rs)
        if annotations_of(ro).get(ROLLOUT_REVISION) != annotations_of(new_rs).get(ROLLOUT_REVISION):
            ro["metadata"].setdefault("annotations", {})[ROLLOUT_REVISION] = annotations_of(new_rs)[ROLLOUT_REVISION]
            ro = self.c.store.replace("rollouts", ro)
            if created:
                self.event(ro, "RolloutUpdated", f"Rollout updated to revision {self.revision(new_rs)}")
        if first_deploy:
            status["stableRS"] = new_hash  # shouldFullPromote: "Initial deploy"
        stable_hash = status["stableRS"]
        if status.get("currentPodHash") != new_hash or status.get("currentStepHash") != step_hash(steps):
            self._reset(ro, status, new_rs, new_hash, stable_hash, steps, created)
        by_hash = {_pod_hash(r): r for r in self.owned_replicasets(ro)}
        stable_rs = by_hash.get(stable_hash)
        others = [r for h, r in by_hash.items() if h not in (new_hash, stable_hash)]
        promoted = stable_hash == new_hash
        aborted = bool(status.get("abort"))
        if aborted:
            self._abort(ro, status, new_rs, promoted, len(steps))
        else:
            status.pop("abortedAt", None)  # retried (status.abort=false): no longer aborted
        if status.get("promoteFull") and not promoted:
            status.pop("pauseConditions", None)
            status.pop("controllerPause", None)
            status["currentStepIndex"] = len(steps)
        index = status.get("currentStepIndex", 0) if steps else 0
        scaled = False
        if not spec.get("paused"):
            if is_traffic_routed(spec):
                scaled, at_desired = self._reconcile_routed(ro, status, canary, steps, index, new_rs, stable_rs,
                                                            others, promoted, aborted)
            else:
                scaled, at_desired = self._reconcile_basic(ro, status, steps, index, new_rs, stable_rs, others,
                                                           promoted, aborted)
            new_rs = self.fresh(new_rs)
            reason = self._should_promote(replicas, status, steps, new_rs, stable_rs, promoted, aborted)
            if reason:
                self._promote(ro, status, new_rs, steps, reason)
            elif not promoted and not aborted and steps and index < len(steps):
                self._step(ro, status, steps, index, scaled, at_desired)
        self._finish(ro, old_status, status, new_rs, steps)

    def _reset(self, ro: Obj, status: Obj, new_rs: Obj, new_hash: str, stable_hash: str, steps: list,
               created: bool) -> None:
        """resetRolloutStatus: a new pod template or new steps start the canary over."""
        previous = status.get("currentPodHash")
        for key in ("pauseConditions", "abortedAt", "abort", "controllerPause", "promoteFull"):
            status.pop(key, None)
        status["currentPodHash"], status["currentStepHash"] = new_hash, step_hash(steps)
        status["currentStepIndex"] = len(steps) if new_hash == stable_hash else 0
        if previous and previous != new_hash and new_hash == stable_hash and steps:
            self.event(ro, "SkipSteps", "Rollback to stable ReplicaSets")
        if created or (previous and previous != new_hash):
            set_condition(status, self.condition("Progressing", "True", "NewReplicaSetCreated" if created else
                                                 "FoundNewReplicaSet", f'{"Created" if created else "Found"} new '
                                             f'replica set "{new_rs["metadata"]["name"]}"'))
            self.mark_progress(ro)

    def _abort(self, ro: Obj, status: Obj, new_rs: Obj, promoted: bool, step_count: int) -> None:
        """CalculateAbortStatus: keep the first abortedAt; no pause while aborted; back to the first step."""
        if not status.get("abortedAt"):
            status["abortedAt"] = rfc3339(self.c.clock.now())
        status.pop("pauseConditions", None)
        status.pop("controllerPause", None)
        if step_count:
            status["currentStepIndex"] = step_count if promoted else 0

    def _reconcile_basic(self, ro: Obj, status: Obj, steps: list, index: int, new_rs: Obj, stable_rs: Obj | None,
                         others: list[Obj], promoted: bool, aborted: bool) -> tuple[bool, bool]:
        """A basic canary: the pods are the split. (scaled anything, at the step's desired counts)."""
        spec = ro["spec"]
        status.get("canary", {}).pop("weights", None)  # only valid when using traffic routing
        weight = MAX_WEIGHT if promoted or status.get("promoteFull") else \
            current_set_weight(steps, index, aborted)
        new_count, stable_count = basic_canary_counts(spec, new_rs, stable_rs, others, weight)
        settled = new_count == _spec_replicas(new_rs) and (stable_rs is None or promoted or
                                                            stable_count == _spec_replicas(stable_rs))
        scaled = False
        if stable_rs is not None and not promoted:
            scaled = self._scale(ro, stable_rs, stable_count) or scaled
        scaled = self._scale(ro, new_rs, new_count) or scaled
        scaled = self._scale_down_others(ro, others) or scaled
        new_rs, stable_rs = self.fresh(new_rs), self.fresh(stable_rs) if stable_rs is not None else None
        at_desired = (settled and _available(new_rs) == new_count
                      and (stable_rs is None or promoted or (stable_rs.get("status") or {}).get("replicas", 0)
                           == stable_count)
                      and sum(_available(self.fresh(r)) for r in others) == 0)
        return scaled, at_desired

    def _scale_down_others(self, ro: Obj, others: list[Obj]) -> bool:
        """scaleDownOldReplicaSetsForCanary (basic): unavailable pods of older ReplicaSets go at once, available
        ones as far as the minimum available allows."""
        spec = ro["spec"]
        _, unavailable = fenceposts(spec)
        scaled = False
        live = [self.fresh(r) for r in others if _spec_replicas(r)]
        for rs in live:
            if _spec_replicas(rs) > _available(rs):
                scaled = self._scale(ro, rs, _available(rs)) or scaled
        all_available = sum(_available(self.fresh(r)) for r in self.owned_replicasets(ro))
        budget = all_available - (spec.get("replicas", 1) - unavailable)
        for rs in sorted((self.fresh(r) for r in live), key=self.revision, reverse=True):
            if budget <= 0:
                break
            count = _spec_replicas(rs)
            if count == 0:
                continue
            down = min(count, budget)
            scaled = self._scale(ro, rs, count - down) or scaled
            budget -= down
        return scaled

    def _reconcile_routed(self, ro: Obj, status: Obj, canary: Obj, steps: list, index: int, new_rs: Obj,
                          stable_rs: Obj | None, others: list[Obj], promoted: bool,
                          aborted: bool) -> tuple[bool, bool]:
        """A traffic-routed canary: set the weight on the provider, then scale. (scaled, at desired counts)."""
        spec, replicas = ro["spec"], ro["spec"].get("replicas", 1)
        desired_new = self._routed_canary_count(spec, status, steps, index, promoted, aborted)
        at_desired = (_available(new_rs) >= desired_new and _spec_replicas(new_rs) == desired_new
                      and (stable_rs is None or promoted or (_spec_replicas(stable_rs) == replicas
                                                              and (stable_rs.get("status") or {}).get("replicas", 0)
                                                              == replicas)))
        # reconcileTrafficRouting: the weight the provider is told
        if promoted or aborted or _available(new_rs) == 0:
            weight = 0
        elif status.get("promoteFull"):
            weight = (((status.get("canary") or {}).get("weights") or {}).get("canary") or {}).get("weight", 0)
        elif not at_desired:
            weight = next((int(s["setWeight"]) for s in reversed(steps[:index]) if "setWeight" in s), 0)
        elif index != len(steps):
            weight = current_set_weight(steps, index)
        else:
            weight = MAX_WEIGHT
        self._set_weights(ro, status, canary, weight, stable_rs if not promoted else new_rs)
        scaled = False
        if stable_rs is not None and not promoted:
            scaled = self._scale(ro, stable_rs, replicas) or scaled
        if aborted and not promoted:
            delay = canary.get("abortScaleDownDelaySeconds", DEFAULT_ABORT_SCALE_DOWN_DELAY)
            if delay and _spec_replicas(new_rs):  # abortScaleDownDelaySeconds: 0 leaves the canary scaled up
                self._scale_down_later(ro, new_rs, delay)
        else:
            scaled = self._scale(ro, new_rs, desired_new) or scaled
        for rs in others:
            if not _spec_replicas(rs):
                continue
            if promoted:
                self._scale_down_later(ro, rs, canary.get("scaleDownDelaySeconds", DEFAULT_SCALE_DOWN_DELAY))
            else:
                scaled = self._scale(ro, rs, 0) or scaled  # an intermediate canary no traffic goes to
        return scaled, at_desired and not scaled

    @staticmethod
    def _routed_canary_count(spec: Obj, status: Obj, steps: list, index: int, promoted: bool, aborted: bool) -> int:
        """CalculateReplicaCountsForTrafficRoutedCanary (without dynamicStableScale): setCanaryScale's count, or
        ceil(weight x replicas / 100)."""
        replicas = spec.get("replicas", 1)
        if promoted or status.get("promoteFull"):
            return replicas
        canary = (spec.get("strategy") or {}).get("canary") or {}
        scale = None
        if not (aborted and canary.get("abortScaleDownDelaySeconds", DEFAULT_ABORT_SCALE_DOWN_DELAY) != 0) \
                and index < len(steps):
            for step in reversed(steps[: index + 1]):
                if "setCanaryScale" in step:
                    scale = None if step["setCanaryScale"].get("matchTrafficWeight") else step["setCanaryScale"]
                    break
        if scale is not None and scale.get("replicas") is not None:
            return int(scale["replicas"])
        weight = int(scale["weight"]) if scale is not None and scale.get("weight") is not None else \
            current_set_weight(steps, index, aborted)
        return math.ceil(weight * replicas / MAX_WEIGHT)

    def _set_weights(self, ro: Obj, status: Obj, canary: Obj, weight: int, stable_rs: Obj | None) -> None:
        weights: Obj = {
            "canary": {"weight": weight, "serviceName": canary.get("canaryService", ""),
                       "podTemplateHash": status["currentPodHash"]},
            "stable": {"weight": MAX_WEIGHT - weight, "serviceName": canary.get("stableService", ""),
                       "podTemplateHash": _pod_hash(stable_rs) or status.get("stableRS", "")},
        }
        for side in weights.values():
            if not side["serviceName"]:
                del side["serviceName"]
        previous = (status.get("canary") or {}).get("weights")
        if previous == weights:
            return
        before = (previous or {}).get("canary", {}).get("weight")
        if before != weight:
            self.event(ro, "TrafficWeightUpdated", "Traffic weight updated " +
                       (f"to {weight}" if previous is None else f"from {before} to {weight}"))
        status.setdefault("canary", {})["weights"] = weights

    @staticmethod
    def _should_promote(replicas: int, status: Obj, steps: list, new_rs: Obj, stable_rs: Obj | None,
                        promoted: bool, aborted: bool) -> str:
        """shouldFullPromote (canary): why the canary becomes stable now, or ''."""
        if promoted or aborted:
            return ""
        if _available(new_rs) < replicas:
            return ""
        if status.get("promoteFull"):
            return "Full promotion requested"
        if stable_rs is not None and (new_rs["metadata"]["creationTimestamp"], new_rs["metadata"]["name"]) < \
                (stable_rs["metadata"]["creationTimestamp"], stable_rs["metadata"]["name"]):
            return "Fast rollback"
        if not steps or status.get("currentStepIndex", 0) >= len(steps):
            return f"Completed all {len(steps)} canary steps"
        return ""

    def _promote(self, ro: Obj, status: Obj, new_rs: Obj, steps: list, reason: str) -> None:
        """promoteStable: the canary is the stable ReplicaSet now."""
        for key in ("pauseConditions", "controllerPause", "promoteFull", "abort", "abortedAt"):
            status.pop(key, None)
        if steps:
            status["currentStepIndex"] = len(steps)
        else:
            status.pop("currentStepIndex", None)
        status["stableRS"] = status["currentPodHash"]
        self.event(ro, "RolloutCompleted", f"Rollout completed update to revision {self.revision(new_rs)} "
                   f"({status['currentPodHash']}): {reason}")

    def _step(self, ro: Obj, status: Obj, steps: list, index: int, scaled: bool, at_desired: bool) -> None:
        """reconcileCanaryPause and completedCurrentCanaryStep for the current step."""
        step = steps[index]
        if "pause" in step:
            key = (ro["metadata"]["uid"], status["currentPodHash"], index)
            duration = parse_duration((step.get("pause") or {}).get("duration"))
            pause = next((p for p in status.get("pauseConditions") or [] if p.get("reason") == PAUSE_REASON), None)
            if pause is None and not status.get("controllerPause") and not scaled:
                status["pauseConditions"] = list(status.get("pauseConditions") or []) + [
                    {"reason": PAUSE_REASON, "startTime": rfc3339(self.c.clock.now())}]
                status["controllerPause"] = True
                self._pause_started[key] = self.c.clock.monotonic()
                if duration is not None:
                    self._later(ro, "pause", self.c.settings.scaled(duration))
                return
            if status.get("controllerPause") and pause is None:
                done = True  # a client cleared the pause condition: `kubectl argo rollouts promote`
            elif duration is not None and pause is not None:
                started = self._pause_started.setdefault(key, self.c.clock.monotonic())
                remaining = started + self.c.settings.scaled(duration) - self.c.clock.monotonic()
                done = remaining <= 0
                if not done:
                    self._later(ro, "pause", remaining)
            else:
                done = False
        elif "setWeight" in step or "setCanaryScale" in step:
            done = at_desired and not scaled
        else:
            done = True  # analysis, experiment, header routes, plugins: not simulated
        if not done:
            return
        self._pause_started.pop((ro["metadata"]["uid"], status["currentPodHash"], index), None)
        status["currentStepIndex"] = index + 1
        self.event(ro, "RolloutStepCompleted", f"Rollout step {index + 1}/{len(steps)} completed "
                   f"({step_string(step)})")
        remaining_pauses = [p for p in status.get("pauseConditions") or [] if p.get("reason") != PAUSE_REASON]
        if remaining_pauses:
            status["pauseConditions"] = remaining_pauses
        else:
            status.pop("pauseConditions", None)
            status.pop("controllerPause", None)

    # -- status --------------------------------------------------------------------------------

    def _finish(self, ro: Obj, old_status: Obj, status: Obj, new_rs: Obj, steps: list) -> None:
        spec = ro["spec"]
        replicas = spec.get("replicas", 1)
        rses = self.owned_replicasets(ro)
        new_rs = next((r for r in rses if r["metadata"]["uid"] == new_rs["metadata"]["uid"]), new_rs)

        status.update({
            **replica_counts(rses, new_rs),
            "HPAReplicas": status_sum("replicas", rses),
            "selector": selector_string(spec["selector"]),
            "observedGeneration": str(ro["metadata"].get("generation", 1)),
        })
        status.setdefault("blueGreen", {})
        status.setdefault("canary", {})
        paused = bool(status.get("pauseConditions")) or bool(spec.get("paused"))
        aborted = bool(status.get("abort"))
        rs_name = new_rs["metadata"]["name"]
        revision = self.revision(new_rs)
        completed = bool(status.get("stableRS")) and status.get("stableRS") == status.get("currentPodHash")
        progress = get_condition(old_status, "Progressing")
        abort_cond = progress is not None and progress.get("reason") == "RolloutAborted"
        # checkPausedConditions
        if paused != (progress is not None and progress.get("reason") == "RolloutPaused") and not abort_cond \
                and not aborted and not completed:
            if paused:
                set_condition(status, self.condition("Progressing", "Unknown", "RolloutPaused", "Rollout is paused"))
            else:
                set_condition(status, self.condition("Progressing", "Unknown", "RolloutResumed", "Rollout is resumed"))
                self.mark_progress(ro)
        if abort_cond and not aborted:
            set_condition(status, self.condition("Progressing", "Unknown", "RolloutRetry",
                                                 "Retrying Rollout after abort"))
            self.event(ro, "RolloutRetry", "Retrying Rollout after abort")
            self.mark_progress(ro)
        paused_cond = get_condition(old_status, "Paused")
        if paused != (paused_cond is not None and paused_cond["status"] == "True") and not abort_cond:
            # Argo writes the same reason and message whether the condition is True or False
            set_condition(status, self.condition("Paused", "True" if paused else "False", "RolloutPaused",
                                                 "Rollout is paused"))
        # calculateRolloutConditions
        healthy = self._healthy(ro, status, steps)
        if not paused and healthy:
            set_condition(status, self.condition("Healthy", "True", "RolloutHealthy", "Rollout is healthy"))
        elif get_condition(status, "Healthy") is not None:
            set_condition(status, self.condition("Healthy", "False", "RolloutHealthy", "Rollout is not healthy"))
        if aborted:
            message = f"Rollout aborted update to revision {revision}"
            if set_condition(status, self.condition("Progressing", "False", "RolloutAborted", message)):
                self.event(ro, "RolloutAborted", message, "Warning")
        current = get_condition(status, "Progressing")
        if not aborted and not paused and current is not None and current.get("reason") != "RolloutPaused":
            if healthy:
                set_condition(status, self.condition("Progressing", "True", "NewReplicaSetAvailable",
                                                     f'ReplicaSet "{rs_name}" has successfully progressed.'))
            elif self._made_progress(old_status, status):
                cond = self.condition("Progressing", "True", "ReplicaSetUpdated",
                                      f'ReplicaSet "{rs_name}" is progressing.')
                if current["status"] == "True":
                    cond["lastTransitionTime"] = current["lastTransitionTime"]
                status["conditions"] = [c for c in status["conditions"] if c["type"] != "Progressing"] + [cond]
                self.mark_progress(ro)
            elif not self._indefinite_step(status, steps) and self._timed_out(ro, status):
                set_condition(status, self.condition("Progressing", "False", "ProgressDeadlineExceeded",
                                                     f'ReplicaSet "{rs_name}" has timed out progressing.'))
        if status_sum("availableReplicas", rses) >= replicas:
            set_condition(status, self.condition("Available", "True", "AvailableReason",
                                                 "Rollout has minimum availability"))
        else:
            set_condition(status, self.condition("Available", "False", "AvailableReason",
                                                 "Rollout does not have minimum availability"))
        if set_condition(status, self.condition("Completed", "True" if completed else "False", "RolloutCompleted",
                                                "RolloutCompleted")) and not completed:
            self.event(ro, "RolloutNotCompleted", f"Rollout not completed, started update to revision {revision} "
                       f"({status.get('currentPodHash')})")
        status["phase"], message = calculate_phase(spec, status)
        if message:
            status["message"] = message
        else:
            status.pop("message", None)
        status = omit_zero(status, ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "HPAReplicas",
                                    "abort", "controllerPause", "pauseConditions", "abortedAt", "promoteFull"))
        if status != old_status:
            ro = self.c.store.must_get("rollouts", ro["metadata"]["namespace"], ro["metadata"]["name"])
            ro["status"] = status
            self.c.store.replace("rollouts", ro)
        cond = get_condition(status, "Progressing")
        if (cond is not None and cond.get("reason") in ("ReplicaSetUpdated", "NewReplicaSetCreated",
                                                         "FoundNewReplicaSet", "RolloutResumed", "RolloutRetry")
                and not paused and not aborted):
            self._later(ro, "deadline", self.progress_since(ro) + self.deadline(ro) - self.c.clock.monotonic() + 0.015)

    def _timed_out(self, ro: Obj, status: Obj) -> bool:
        cond = get_condition(status, "Progressing")
        if cond is None or cond.get("reason") in ("RolloutAborted", "RolloutPaused"):
            return False
        if cond.get("reason") == "ProgressDeadlineExceeded":
            return True
        return self.deadline_passed(ro)

    @staticmethod
    def _indefinite_step(status: Obj, steps: list) -> bool:
        """isIndefiniteStep: a pause without a duration does not count against the progress deadline."""
        index = status.get("currentStepIndex", 0)
        if not steps or index >= len(steps):
            return False
        pause = steps[index].get("pause")
        return pause is not None and (pause or {}).get("duration") is None

    @staticmethod
    def _made_progress(old: Obj, new: Obj) -> bool:
        """conditions.RolloutProgressing (canary)."""
        old_old = old.get("replicas", 0) - old.get("updatedReplicas", 0)
        new_old = new.get("replicas", 0) - new.get("updatedReplicas", 0)
        return (new.get("updatedReplicas", 0) != old.get("updatedReplicas", 0) or new_old < old_old
                or new.get("readyReplicas", 0) > old.get("readyReplicas", 0)
                or new.get("availableReplicas", 0) > old.get("availableReplicas", 0)
                or new.get("stableRS") != old.get("stableRS")
                or new.get("currentStepIndex") != old.get("currentStepIndex")
                or new.get("currentStepHash") != old.get("currentStepHash"))

    @staticmethod
    def _healthy(ro: Obj, status: Obj, steps: list) -> bool:
        """conditions.RolloutHealthy for a canary."""
        replicas = ro["spec"].get("replicas", 1)
        executed = not steps or status.get("currentStepIndex") == len(steps)
        stable = bool(status.get("stableRS")) and status.get("stableRS") == status.get("currentPodHash")
        return (status.get("updatedReplicas", 0) == replicas and status.get("availableReplicas", 0) == replicas
                and status.get("replicas", 0) == replicas and executed and stable)
