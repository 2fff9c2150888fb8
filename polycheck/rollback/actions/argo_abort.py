"""`argo-abort`: `kubectl argo rollouts abort`."""

from __future__ import annotations

from polycheck.clients.argo import canary_state
from polycheck.rollback.actions.protocol import NoSettings, Plan, RollbackActionSkipped, Target


class ArgoAbort:
    """status.abort=true: traffic back to the stable ReplicaSet; skipped when the Rollout is aborted already."""

    name = "argo-abort"
    settings = NoSettings

    def plan(self, target: Target, settings: NoSettings) -> Plan:
        kube = target.kube()
        rollout = kube.rollout(target.deployment)
        status = rollout.get("status", {})
        state = canary_state(rollout)
        if state.aborted:
            raise RollbackActionSkipped(f"rollout {target.deployment} is already {state.abort_text()}: not aborted again")
        description = (
            f"kubectl argo rollouts abort {target.deployment} -n {kube.namespace} (phase {status.get('phase')}, "
            f"step {status.get('currentStepIndex')}, stable {status.get('stableRS')}, canary {status.get('currentPodHash')})"
        )

        def apply() -> str:
            kube.patch_rollout_status(target.deployment, {"status": {"abort": True}})
            return f"rollout {target.deployment} aborted"

        return Plan(self.name, description, apply)
