"""`argo-undo`: `kubectl argo rollouts undo`."""

from __future__ import annotations

from polycheck.clients.kube import revision_of
from polycheck.rollback.actions._workloads import clean_template, images, previous_replicaset
from polycheck.rollback.actions.protocol import NoSettings, Plan, Target


class ArgoUndo:
    """The Rollout's template back to the previous revision's."""

    name = "argo-undo"
    settings = NoSettings

    def plan(self, target: Target, settings: NoSettings) -> Plan:
        kube = target.kube()
        rollout = kube.rollout(target.deployment)
        previous = previous_replicaset(kube, rollout)
        template = clean_template(previous)
        description = (
            f"kubectl argo rollouts undo {target.deployment} -n {kube.namespace}: revision {revision_of(rollout)} -> "
            f"{revision_of(previous)} ({images(template)})"
        )

        def apply() -> str:
            kube.patch_rollout(target.deployment, {"spec": {"template": template}})
            return f"rollout {target.deployment} back to revision {revision_of(previous)} ({images(template)})"

        return Plan(self.name, description, apply)
