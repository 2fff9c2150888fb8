"""What an Argo Rollout's status says about its canary, read the way Argo Rollouts itself means it.

Pure functions of the Rollout (and optionally its ReplicaSets) as the API returns them, for the canary gate,
the rollout checks and anything that must not abort a canary twice. What Argo Rollouts guarantees, and what is
read here (pkg/apis/rollouts/v1alpha1/types.go, utils/replicaset/canary.go, utils/rollout/rolloututil.go):

- `status.canary.weights` is set only when the Rollout uses traffic routing ("Weights records the weights which
  have been set on traffic provider. Only valid when using traffic routing"). A basic, replica-based canary has
  none: its traffic weight is the `setWeight` in force at `status.currentStepIndex` (the last one at or before it;
  100 past the last step), approximated by the number of canary and stable pods.
- The phases are Healthy, Progressing, Paused and Degraded (`status.phase`, `status.message`). An aborted Rollout
  is Degraded, with `status.abort: true`, `status.abortedAt` and a Progressing condition of reason RolloutAborted
  ("Rollout aborted update to revision N[: why]").
- `status.stableRS` and `status.currentPodHash` are the `rollouts-pod-template-hash` of the stable and of the
  desired ReplicaSet; a canary is in progress while they differ and the Rollout is not aborted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

HASH_LABEL = "rollouts-pod-template-hash"
PHASES = ("Healthy", "Progressing", "Paused", "Degraded")
MAX_WEIGHT = 100
ABORTED_MESSAGE = "Rollout aborted update to revision"


@dataclass(frozen=True)
class CanaryState:
    """A Rollout's canary as its status says it is."""

    phase: str  # Healthy | Progressing | Paused | Degraded
    message: str  # status.message (e.g. "CanaryPauseStep", "RolloutAborted: Rollout aborted update to revision 3")
    in_progress: bool  # a canary is running: currentPodHash != stableRS and not aborted
    aborted: bool  # status.abort
    aborted_at: str | None  # status.abortedAt
    abort_message: str  # the RolloutAborted condition's message ("Rollout aborted update to revision 3[: why]")
    aborted_by: str  # who aborted it, as far as the Rollout says ("" when not aborted)
    paused: bool  # spec.paused or pause conditions
    pause_reasons: tuple[str, ...]  # status.pauseConditions[].reason, "manually paused" for spec.paused
    weight: int  # the canary's traffic weight, in percent
    weight_source: str  # "traffic-routing" (status.canary.weights) | "setWeight" (the step in force)
    weight_reached: bool  # the weight is in effect: set on the router, or its setWeight step has completed
    ready_share: float | None  # the canary's share of the ready canary and stable pods, in percent
    canary_ready: int | None  # ready pods of the canary ReplicaSet (None without ReplicaSets)
    stable_ready: int | None  # ready pods of the stable ReplicaSet
    current_step_index: int | None  # status.currentStepIndex
    step_count: int  # len(spec.strategy.canary.steps)
    stable_hash: str  # status.stableRS
    canary_hash: str  # status.currentPodHash
    traffic_routed: bool  # spec.strategy.canary.trafficRouting is set
    revision: str  # metadata.annotations["rollout.argoproj.io/revision"]

    @property
    def step(self) -> str:
        """'step 3/7' for messages."""
        return f"step {self.current_step_index if self.current_step_index is not None else '?'}/{self.step_count}"

    def weight_detail(self) -> str:
        """Where the weight comes from and the canary's share of ready pods: 'setWeight in force at step 3/7;
        canary 1 of 3 ready pods = 33%'."""
        source = ("set on the traffic router" if self.weight_source == "traffic-routing"
                  else f"setWeight in force at {self.step}")
        if self.ready_share is None:
            return source
        serving = (self.canary_ready or 0) + (self.stable_ready or 0)
        return f"{source}; canary {self.canary_ready} of {serving} ready pods = {self.ready_share:.0f}%"

    def weight_text(self) -> str:
        """'20% of the traffic (setWeight in force at step 3/7; canary 1 of 3 ready pods = 33%)'."""
        return f"{self.weight}% of the traffic ({self.weight_detail()})"

    def abort_text(self) -> str:
        """'aborted at 2026-11-28T09:30:00Z by ...: Rollout aborted update to revision 3'."""
        when = f" at {self.aborted_at}" if self.aborted_at else ""
        why = f": {self.abort_message}" if self.abort_message else ""
        return f"aborted{when} by {self.aborted_by}{why}"

    def describe(self) -> str:
        """One line for messages: phase, message, step, hashes, weight, abort."""
        parts = [f"phase {self.phase or '?'}" + (f" ({self.message})" if self.message else ""), self.step,
                 f"stable {self.stable_hash or '?'}", f"canary {self.canary_hash or '?'}"]
        if self.aborted:
            parts.append(self.abort_text())
        elif self.in_progress:
            parts.append(self.weight_text())
        return ", ".join(parts)


def _status(rollout: dict[str, Any]) -> dict[str, Any]:
    return rollout.get("status") or {}


def canary_spec(rollout: dict[str, Any]) -> dict[str, Any]:
    return ((rollout.get("spec") or {}).get("strategy") or {}).get("canary") or {}


def set_weight_at(steps: list[dict[str, Any]], index: int | None) -> int:
    """The setWeight in force at step `index` (replicasetutil.GetCurrentSetWeight without the abort): the last
    setWeight at or before it, 0 if there is none yet, 100 once every step has run (or with no steps)."""
    index = index or 0
    if not steps or index >= len(steps):
        return MAX_WEIGHT
    for step in reversed(steps[: index + 1]):
        if "setWeight" in step:
            return int(step["setWeight"])
    return 0


def rollout_phase(rollout: dict[str, Any]) -> tuple[str, str]:
    """rolloututil.GetRolloutPhase: (phase, message), Progressing while the controller has not yet seen the spec or
    a promotion; otherwise status.phase/message (computed client-side for a controller older than v1.0)."""
    status, meta = _status(rollout), rollout.get("metadata") or {}
    observed = str(status.get("observedGeneration", ""))
    if observed.isdigit() and "generation" in meta and int(observed) < int(meta["generation"]):
        return "Progressing", "waiting for rollout spec update to be observed"
    if status.get("controllerPause") and not status.get("pauseConditions"):
        return "Progressing", "waiting for rollout to unpause"
    if status.get("phase"):
        return str(status["phase"]), str(status.get("message") or "")
    return _calculate_phase(rollout)


def _calculate_phase(rollout: dict[str, Any]) -> tuple[str, str]:
    """rolloututil.CalculateRolloutPhase for a canary (what an Argo Rollouts controller before v1.0 left to clients)."""
    spec, status = rollout.get("spec") or {}, _status(rollout)
    for cond in status.get("conditions") or []:
        if cond.get("type") == "InvalidSpec":
            return "Degraded", f"InvalidSpec: {cond.get('message', '')}"
        if cond.get("reason") in ("RolloutAborted", "ProgressDeadlineExceeded"):
            return "Degraded", f"{cond['reason']}: {cond.get('message', '')}"
    if spec.get("paused"):
        return "Paused", "manually paused"
    for pause in status.get("pauseConditions") or []:
        return "Paused", str(pause.get("reason", ""))
    replicas = spec.get("replicas", 1)
    if status.get("updatedReplicas", 0) < replicas:
        return "Progressing", "more replicas need to be updated"
    if status.get("availableReplicas", 0) < status.get("updatedReplicas", 0):
        return "Progressing", "updated replicas are still becoming available"
    if canary_spec(rollout).get("trafficRouting") is None and status.get("replicas", 0) > status.get("updatedReplicas", 0):
        return "Progressing", "old replicas are pending termination"
    if not status.get("stableRS") or status.get("stableRS") != status.get("currentPodHash"):
        return "Progressing", "waiting for all steps to complete"
    return "Healthy", ""


def _abort_condition(status: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c.get("reason") == "RolloutAborted"), {})


def _abort_writer(rollout: dict[str, Any]) -> str:
    """The field manager that wrote status.abort through the status subresource (metadata.managedFields), if the
    API server records it."""
    for entry in (rollout.get("metadata") or {}).get("managedFields") or []:
        fields = ((entry.get("fieldsV1") or {}).get("f:status") or {})
        if "f:abort" in fields and entry.get("manager"):
            return f"{entry['manager']} ({entry.get('operation', 'Update')} at {entry.get('time', '?')})"
    return ""


def aborted_by(rollout: dict[str, Any]) -> str:
    """Who aborted the Rollout, as far as it says: the controller gives its reason after the revision
    ("...revision 3: Metric "x" assessed Failed ..."); a client patching status.abort (`kubectl argo rollouts
    abort`, a rollback hook) leaves the bare message, and its field manager when the API server records one."""
    message = str(_abort_condition(_status(rollout)).get("message") or "")
    head, sep, why = message.partition(": ")
    if sep and head.startswith(ABORTED_MESSAGE):
        return f"the Argo Rollouts controller ({why})"
    writer = _abort_writer(rollout)
    if writer:
        return writer
    return "a client setting status.abort (kubectl argo rollouts abort or a rollback hook)"


def canary_state(rollout: dict[str, Any], replicasets: list[dict[str, Any]] | None = None) -> CanaryState:
    """The canary of `rollout` (a Rollout as the API returns it); `replicasets` (its ReplicaSets) add the ready
    pods of the canary and the stable ReplicaSet, the traffic split of a basic canary."""
    status, canary = _status(rollout), canary_spec(rollout)
    steps = canary.get("steps") or []
    stable, current = str(status.get("stableRS") or ""), str(status.get("currentPodHash") or "")
    aborted = bool(status.get("abort"))
    index = status.get("currentStepIndex")
    phase, message = rollout_phase(rollout)
    weights = ((status.get("canary") or {}).get("weights") or {}).get("canary")
    if weights is not None:
        weight, source, reached = int(weights.get("weight") or 0), "traffic-routing", True
    else:
        weight, source = (0 if aborted else set_weight_at(steps, index)), "setWeight"
        at = index if isinstance(index, int) else 0
        reached = not (0 <= at < len(steps) and "setWeight" in steps[at])  # a setWeight step completes at desired pods
    canary_ready = stable_ready = None
    share = None
    if replicasets is not None:
        ready = {stable: 0, current: 0}
        for rs in replicasets:
            pod_hash = ((rs.get("metadata") or {}).get("labels") or {}).get(HASH_LABEL)
            if pod_hash in ready:
                ready[pod_hash] += int((rs.get("status") or {}).get("readyReplicas") or 0)
        canary_ready = ready[current] if current != stable else 0
        stable_ready = ready[stable]
        serving = canary_ready + stable_ready
        share = 100.0 * canary_ready / serving if serving else 0.0
    spec = rollout.get("spec") or {}
    reasons = tuple(str(p.get("reason", "")) for p in status.get("pauseConditions") or [])
    if spec.get("paused"):
        reasons = ("manually paused",) + reasons
    condition = _abort_condition(status)
    return CanaryState(
        phase=phase if phase in PHASES else "",
        message=message,
        in_progress=bool(current) and current != stable and not aborted,
        aborted=aborted,
        aborted_at=status.get("abortedAt") if aborted else None,
        abort_message=str(condition.get("message") or "") if aborted else "",
        aborted_by=aborted_by(rollout) if aborted else "",
        paused=bool(reasons),
        pause_reasons=reasons,
        weight=weight,
        weight_source=source,
        weight_reached=reached,
        ready_share=share,
        canary_ready=canary_ready,
        stable_ready=stable_ready,
        current_step_index=index if isinstance(index, int) else None,
        step_count=len(steps),
        stable_hash=stable,
        canary_hash=current,
        traffic_routed=canary.get("trafficRouting") is not None,
        revision=str(((rollout.get("metadata") or {}).get("annotations") or {}).get("rollout.argoproj.io/revision", "")),
    )
