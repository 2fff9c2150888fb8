"""`kubernetes-set-image`: `kubectl set image` to the previous version's images."""

from __future__ import annotations

from polycheck.rollback.actions._workloads import images, previous_replicaset
from polycheck.rollback.actions.protocol import NoSettings, Plan, RollbackActionError, Target


class KubernetesSetImage:
    """The images of the previous ReplicaSet, set on the Deployment's containers that changed."""

    name = "kubernetes-set-image"
    settings = NoSettings

    def plan(self, target: Target, settings: NoSettings) -> Plan:
        kube = target.kube()
        deploy = kube.deployment(target.deployment)
        previous = previous_replicaset(kube, deploy)
        old = {c["name"]: c["image"] for c in previous["spec"]["template"]["spec"]["containers"]}
        now = {c["name"]: c["image"] for c in deploy["spec"]["template"]["spec"]["containers"]}
        changes = [{"name": name, "image": image} for name, image in old.items() if name in now and now[name] != image]
        if not changes:
            raise RollbackActionError(f"deploy/{target.deployment}: the previous revision runs the same images ({images(deploy['spec']['template'])})")
        body = {"spec": {"template": {"spec": {"containers": changes}}}}
        words = " ".join(f"{c['name']}={c['image']}" for c in changes)
        description = f"kubectl set image deploy/{target.deployment} {words} -n {kube.namespace}"

        def apply() -> str:
            kube.patch_deployment(target.deployment, body)
            return f"deploy/{target.deployment} set to {words}"

        return Plan(self.name, description, apply)
