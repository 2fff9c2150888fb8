"""Kubernetes access for rollout checks and rollback actions, with the official client.

In-cluster (service account) or from a kubeconfig and context named in the env config; every call has
a timeout, and an unreachable cluster is a `KubeUnavailable` that names the context. The client library is
imported when a cluster is first connected to, so runs without Kubernetes checks never load it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .failures import CannotMeasure
from .config import KubernetesConfig

ARGO_GROUP, ARGO_VERSION, ARGO_PLURAL = "argoproj.io", "v1alpha1", "rollouts"
REVISION = "deployment.kubernetes.io/revision"
ARGO_REVISION = "rollout.argoproj.io/revision"
HASH_LABELS = ("pod-template-hash", "rollouts-pod-template-hash")


class KubeUnavailable(CannotMeasure, RuntimeError):
    """The cluster cannot be reached or the credentials do not work."""


class KubeNotFound(LookupError):
    """The object does not exist."""


@dataclass
class Kube:
    """Typed reads and writes of the PolyShop workloads in one namespace."""

    api: Any  # kubernetes.client.ApiClient
    namespace: str
    where: str  # "context X of kubeconfig Y" / "in-cluster": for messages
    timeout: float = 10.0

    @classmethod
    def connect(cls, settings: KubernetesConfig, timeout: float = 10.0) -> "Kube":
        from kubernetes import client as k8s
        from kubernetes import config as k8s_config
        from kubernetes.config.config_exception import ConfigException

        try:
            if settings.in_cluster or running_in_cluster_without_kubeconfig(settings):
                configuration = k8s.Configuration()
                k8s_config.load_incluster_config(client_configuration=configuration)
                return cls(k8s.ApiClient(configuration), settings.namespace, "in-cluster service account", timeout)
            api = k8s_config.new_client_from_config(
                config_file=settings.kubeconfig or None, context=settings.context or None
            )
        except (ConfigException, OSError, TypeError) as exc:
            raise KubeUnavailable(f"cannot load the Kubernetes credentials for {describe(settings)}: {exc}") from None
        return cls(api, settings.namespace, describe(settings), timeout)

    def close(self) -> None:
        self.api.close()

    # -- calls -----------------------------------------------------------------------------------
    def _call(self, what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        import urllib3
        from kubernetes.client.exceptions import ApiException

        try:
            return function(*args, _request_timeout=self.timeout, **kwargs)
        except ApiException as exc:
            if exc.status == 404:
                raise KubeNotFound(f"{what}: not found in namespace {self.namespace} ({self.where})") from None
            if exc.status in (401, 403):
                raise KubeUnavailable(f"{what}: HTTP {exc.status} from the cluster ({self.where}): check the credentials/RBAC") from None
            raise KubeUnavailable(f"{what}: HTTP {exc.status} from the cluster ({self.where}): {exc.reason}") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeUnavailable(f"{what}: the cluster is unreachable ({self.where}): {type(exc).__name__}: {exc}") from None

    @property
    def apps(self) -> Any:
        from kubernetes.client import AppsV1Api

        return AppsV1Api(self.api)

    @property
    def core(self) -> Any:
        from kubernetes.client import CoreV1Api

        return CoreV1Api(self.api)

    @property
    def custom(self) -> Any:
        from kubernetes.client import CustomObjectsApi

        return CustomObjectsApi(self.api)

    def _plain(self, obj: Any) -> dict[str, Any]:
        return obj if isinstance(obj, dict) else self.api.sanitize_for_serialization(obj)

    def deployment(self, name: str) -> dict[str, Any]:
        return self._plain(self._call(f"deployment {name}", self.apps.read_namespaced_deployment, name, self.namespace))

    def rollout(self, name: str) -> dict[str, Any]:
        return self._call(
            f"rollout {name}", self.custom.get_namespaced_custom_object, ARGO_GROUP, ARGO_VERSION, self.namespace, ARGO_PLURAL, name
        )

    def workload(self, kind: str, name: str) -> dict[str, Any]:
        return self.rollout(name) if kind == "rollout" else self.deployment(name)

    def replicasets(self, selector: str) -> list[dict[str, Any]]:
        result = self._call("replicasets", self.apps.list_namespaced_replica_set, self.namespace, label_selector=selector)
        return [self._plain(rs) for rs in result.items]

    def pods(self, selector: str) -> list[dict[str, Any]]:
        result = self._call("pods", self.core.list_namespaced_pod, self.namespace, label_selector=selector)
        return [self._plain(pod) for pod in result.items]

    def patch_deployment(self, name: str, body: Any) -> dict[str, Any]:
        """A list body is sent as a JSON patch, a dict as a strategic merge patch (as the client decides)."""
        return self._plain(self._call(f"patch deployment {name}", self.apps.patch_namespaced_deployment, name, self.namespace, body))

    def patch_rollout(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call(
            f"patch rollout {name}", self.custom.patch_namespaced_custom_object,
            ARGO_GROUP, ARGO_VERSION, self.namespace, ARGO_PLURAL, name, body,
        )

    def patch_rollout_status(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call(
            f"patch rollout {name} status", self.custom.patch_namespaced_custom_object_status,
            ARGO_GROUP, ARGO_VERSION, self.namespace, ARGO_PLURAL, name, body,
        )


def running_in_cluster_without_kubeconfig(settings: KubernetesConfig, environ: Any = None) -> bool:
    """Inside a pod (the CronJob, the Argo analysis Job) with no kubeconfig to read: use the service account."""
    environ = os.environ if environ is None else environ
    kubeconfig = settings.kubeconfig or environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    return bool(environ.get("KUBERNETES_SERVICE_HOST")) and not os.path.exists(kubeconfig.split(os.pathsep)[0])


def describe(settings: KubernetesConfig) -> str:
    if settings.in_cluster:
        return "in-cluster service account"
    return f"context {settings.context or '(current)'} of kubeconfig {settings.kubeconfig or '~/.kube/config'}"


def selector_of(workload: dict[str, Any]) -> str:
    labels = (workload.get("spec", {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def revision_of(obj: dict[str, Any]) -> int:
    annotations = obj.get("metadata", {}).get("annotations") or {}
    raw = annotations.get(REVISION) or annotations.get(ARGO_REVISION) or "0"
    return int(raw) if str(raw).isdigit() else 0


def template_hash(obj: dict[str, Any]) -> str | None:
    labels = obj.get("metadata", {}).get("labels") or {}
    return next((labels[k] for k in HASH_LABELS if k in labels), None)
