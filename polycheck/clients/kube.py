"""Kubernetes access for rollout checks and rollback actions, with the official client.

In-cluster (service account) or from a kubeconfig and context named in the env config; every call has
a timeout, and an unreachable cluster is a `KubeUnavailable` that names the context. The client library is
imported when a cluster is first connected to, so runs without Kubernetes checks never load it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
from dataclasses import dataclass
from urllib.parse import quote
from typing import Any

from polycheck.core.failures import CannotMeasure
from polycheck.core.config import KubernetesConfig

ARGO_GROUP, ARGO_VERSION, ARGO_PLURAL = "argoproj.io", "v1alpha1", "rollouts"
ARGO_API = f"{ARGO_GROUP}/{ARGO_VERSION}"
LEASE_API = "coordination.k8s.io/v1"
REVISION = "deployment.kubernetes.io/revision"
ARGO_REVISION = "rollout.argoproj.io/revision"
HASH_LABELS = ("pod-template-hash", "rollouts-pod-template-hash")


_LIBRARY: tuple[Any, ...] | None = None
_LIBRARY_LOCK = threading.Lock()


def _client_library() -> tuple[Any, ...]:
    """The parts of the kubernetes client used here, imported once, under one lock: checks running at once may
    connect from several threads, and the client's package loads its modules lazily (module `__getattr__`), which
    two threads importing at the same moment can see half-initialised."""
    global _LIBRARY
    with _LIBRARY_LOCK:
        if _LIBRARY is None:
            _without_socks_support()
            import urllib3
            from kubernetes import client as k8s
            from kubernetes import config as k8s_config
            from kubernetes.client.exceptions import ApiException
            from kubernetes.config.config_exception import ConfigException

            k8s.ApiClient, k8s.Configuration  # noqa: B018 - loaded now, not by the first call of each thread
            _LIBRARY = (k8s, k8s_config, ConfigException, ApiException, (urllib3.exceptions.HTTPError, OSError))
        return _LIBRARY


SOCKS_MODULE = "urllib3.contrib.socks"


def _without_socks_support() -> None:
    """Without PySocks, make `urllib3.contrib.socks` fail to import at once, as it would anyway, but without the
    DependencyWarning it issues first. The client's import (kubernetes → requests_oauthlib → requests) runs in
    whichever thread first needs the cluster; `requests` silences that warning with a global `simplefilter` and then
    tries the module, and the warnings filters are one process-wide list, which pytest's main thread swaps back at
    the end of every test (`catch_warnings`). Between the two lines requests' filter can be dropped: the warning
    was then printed after a run's sign-off (or raised, under `filterwarnings = error`). A `None` in `sys.modules`
    makes the import raise ImportError without running the module, so nothing depends on which thread imports."""
    if SOCKS_MODULE not in sys.modules and importlib.util.find_spec("socks") is None:
        sys.modules[SOCKS_MODULE] = None  # type: ignore[assignment]


class KubeUnavailable(CannotMeasure, RuntimeError):
    """The cluster cannot be reached or the credentials do not work."""


class KubeNotFound(LookupError):
    """The object does not exist."""


class KubeConflict(RuntimeError):
    """409: the object exists already (a create), or changed since it was read (a replace)."""


@dataclass
class Kube:
    """Typed reads and writes of the PolyShop workloads in one namespace."""

    api: Any  # kubernetes.client.ApiClient
    namespace: str
    where: str  # "context X of kubeconfig Y" / "in-cluster": for messages
    timeout: float = 10.0

    @classmethod
    def connect(cls, settings: KubernetesConfig, timeout: float = 10.0) -> Kube:
        k8s, k8s_config, ConfigException, _, _ = _client_library()

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
        except ImportError as exc:  # e.g. a SOCKS proxy (kubeconfig proxy-url, or the environment) without PySocks
            hint = " (a SOCKS proxy needs PySocks: pip install pysocks)" if SOCKS_MODULE in str(exc) else ""
            raise KubeUnavailable(f"cannot reach the cluster of {describe(settings)}: {exc}{hint}") from None
        return cls(api, settings.namespace, describe(settings), timeout)

    def close(self) -> None:
        self.api.close()

    # -- calls -----------------------------------------------------------------------------------
    # The official client's ApiClient does the configuration, authentication and transport; the reads and patches
    # go through it as plain JSON, without its typed API classes: importing those builds hundreds of pydantic
    # models (about 0.8 s of CPU in a smoke run, all of it under the GIL the concurrent checks share).
    def _request(self, what: str, method: str, path: str, *, query: list[tuple[str, str]] | None = None,
                 body: Any = None, content_type: str | None = None) -> Any:
        _, _, _, ApiException, transport_errors = _client_library()
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            serialized = self.api.param_serialize(method=method, resource_path=path, query_params=query or [],
                                                  header_params=headers, body=body, auth_settings=["BearerToken"])
            response = self.api.call_api(*serialized, _request_timeout=self.timeout)
            response.read()
        except ApiException as exc:
            status, reason = exc.status, exc.reason
        except transport_errors as exc:
            raise KubeUnavailable(f"{what}: the cluster is unreachable ({self.where}): {type(exc).__name__}: {exc}") from None
        else:
            status, reason = response.status, response.reason
            if 200 <= status <= 299:
                try:
                    return json.loads(response.data or b"null")
                except ValueError as exc:
                    raise KubeUnavailable(f"{what}: the cluster answered something that is not JSON ({self.where}): {exc}") from None
        if status == 409:
            raise KubeConflict(f"{what}: HTTP 409 from the cluster ({self.where}): {reason}")
        if status == 404:
            raise KubeNotFound(f"{what}: not found in namespace {self.namespace} ({self.where})")
        if status in (401, 403):
            raise KubeUnavailable(f"{what}: HTTP {status} from the cluster ({self.where}): check the credentials/RBAC")
        raise KubeUnavailable(f"{what}: HTTP {status} from the cluster ({self.where}): {reason}")

    def _namespaced(self, group_version: str, plural: str, name: str = "", subresource: str = "") -> str:
        base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        path = f"{base}/namespaces/{quote(self.namespace, safe='')}/{plural}"
        if name:
            path += f"/{quote(name, safe='')}"
        return path + (f"/{subresource}" if subresource else "")

    def deployment(self, name: str) -> dict[str, Any]:
        return self._request(f"deployment {name}", "GET", self._namespaced("apps/v1", "deployments", name))

    def rollout(self, name: str) -> dict[str, Any]:
        return self._request(f"rollout {name}", "GET", self._namespaced(ARGO_API, ARGO_PLURAL, name))

    def workload(self, kind: str, name: str) -> dict[str, Any]:
        return self.rollout(name) if kind == "rollout" else self.deployment(name)

    def replicasets(self, selector: str) -> list[dict[str, Any]]:
        found = self._request("replicasets", "GET", self._namespaced("apps/v1", "replicasets"), query=[("labelSelector", selector)])
        return list(found.get("items") or [])

    def pods(self, selector: str) -> list[dict[str, Any]]:
        found = self._request("pods", "GET", self._namespaced("v1", "pods"), query=[("labelSelector", selector)])
        return list(found.get("items") or [])

    def patch_deployment(self, name: str, body: Any) -> dict[str, Any]:
        """A list body is sent as a JSON patch, a dict as a strategic merge patch (as `kubectl patch` does)."""
        kind = "application/json-patch+json" if isinstance(body, list) else "application/strategic-merge-patch+json"
        return self._request(f"patch deployment {name}", "PATCH", self._namespaced("apps/v1", "deployments", name),
                             body=body, content_type=kind)

    # -- coordination.k8s.io Leases (polycheck.clients.leases: cross-run SKU leases) ------------------------------
    def lease(self, name: str) -> dict[str, Any]:
        return self._request(f"lease {name}", "GET", self._namespaced(LEASE_API, "leases", name))

    def create_lease(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("create lease", "POST", self._namespaced(LEASE_API, "leases"), body=body,
                             content_type="application/json")

    def replace_lease(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._request(f"replace lease {name}", "PUT", self._namespaced(LEASE_API, "leases", name), body=body,
                             content_type="application/json")

    def delete_lease(self, name: str) -> dict[str, Any]:
        return self._request(f"delete lease {name}", "DELETE", self._namespaced(LEASE_API, "leases", name))

    def patch_rollout(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._request(f"patch rollout {name}", "PATCH", self._namespaced(ARGO_API, ARGO_PLURAL, name),
                             body=body, content_type="application/merge-patch+json")

    def patch_rollout_status(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._request(f"patch rollout {name} status", "PATCH", self._namespaced(ARGO_API, ARGO_PLURAL, name, "status"),
                             body=body, content_type="application/merge-patch+json")


class LazyKube(Kube):
    """A Kube that loads the credentials and the client on its first call, in whichever thread makes it (so a run
    whose checks run ahead does not pay for the client's import before its first check). A cluster that cannot
    be loaded raises KubeUnavailable from that call, as `Kube.connect` would have."""

    def __init__(self, settings: KubernetesConfig, timeout: float = 10.0) -> None:
        in_cluster = settings.in_cluster or running_in_cluster_without_kubeconfig(settings)
        self.settings, self.namespace, self.timeout = settings, settings.namespace, timeout
        self.where = "in-cluster service account" if in_cluster else describe(settings)
        self._api: Any = None
        self._lock = threading.Lock()

    @property
    def api(self) -> Any:
        with self._lock:
            if self._api is None:
                self._api = Kube.connect(self.settings, self.timeout).api
            return self._api

    def close(self) -> None:
        with self._lock:
            if self._api is not None:
                self._api.close()
                self._api = None

    def __repr__(self) -> str:
        return f"LazyKube({self.where}, namespace {self.namespace})"


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
