"""`kubernetes-undo`: what `kubectl rollout undo` does."""

from __future__ import annotations

from polycheck.clients.kube import revision_of
from polycheck.rollback.actions._workloads import clean_template, images, previous_replicaset
from polycheck.rollback.actions.protocol import NoSettings, Plan, Target


class KubernetesUndo:
    """The Deployment's pod template back to the previous ReplicaSet's, by revision (JSON patch)."""

    name = "kubernetes-undo"
    settings = NoSettings

    def plan(self, target: Target, settings: NoSettings) -> Plan:
        kube = target.kube()
        deploy = kube.deployment(target.deployment)
        previous = previous_replicaset(kube, deploy)
        template = clean_template(previous)
        patch = [{"op": "replace", "path": "/spec/template", "value": template}]
        description = (
            f"kubectl rollout undo deploy/{target.deployment} -n {kube.namespace}: revision {revision_of(deploy)} "
            f"({images(deploy['spec']['template'])}) -> revision {revision_of(previous)} ({images(template)})"
        )

        def apply() -> str:
            kube.patch_deployment(target.deployment, patch)
            return f"deploy/{target.deployment} rolled back to the template of revision {revision_of(previous)} ({images(template)})"

        return Plan(self.name, description, apply)
