"""KubeSimulator: the seeded cluster, its ASGI app, fault methods and reset."""

from __future__ import annotations

import asyncio
import copy
import threading
from typing import Any

from .api import KubeApi
from .cluster import Settings
from .faults import FAULTS, FaultError, Faults
from .kubeconfig import DEFAULT_TOKEN
from .meta import Obj
from .kubelet import container_log
from .runtime import on_loop
from .seed import NAMESPACE, PREVIOUS_VERSION, REGISTRY, VERSION, seed
from .tables import pod_status_reason
from .world import World

class KubeSimulator(Faults):
    """A Kubernetes API server with the PolyShop workloads, for the official client and kubectl over HTTP.

    Serve `.app` (ASGI) on a port with any ASGI server (the local stack's HttpServer, or uvicorn as
    kubesim.testing.SimulatorThread does), and give clients a kubeconfig from
    `kubesim.write_kubeconfig(path, url, token=sim.token)`. The controllers run on the event loop that serves
    the app (bound at `await start()` or at the first request). Fault methods, `reset()` and the read helpers may be
    called from any thread: they run on that loop.

    namespace / registry / version / previous_version: what the seed deploys.
    token: the bearer token of the kubeconfig user; a request presenting another bearer token gets 401. Requests
      without credentials are served, as kubectl sends none to a plain-HTTP server (None: no check at all).
    server_version: what /version reports (also picks the bundled kubectl of the gcloud dispatcher).
    settings: timing of the simulated cluster (cluster.Settings: pod_ready_delay, time_scale, ...).
    traffic_routing: the seed's canary Rollouts (payment) split traffic with an NGINX ingress and report
      `status.canary.weights`; by default they are basic canaries whose ready pods are the split (the kube faults
      `traffic-routing` and `replica-canary` switch a Rollout either way at run time).
    seed: seeds the random names and UIDs, so runs are reproducible.
    """

    def __init__(self, *, namespace: str = NAMESPACE, registry: str = REGISTRY, version: str = VERSION,
                 previous_version: str = PREVIOUS_VERSION, token: str | None = DEFAULT_TOKEN,
                 server_version: str = "v1.33.1", settings: Settings | None = None, seed: int = 0,
                 traffic_routing: bool = False) -> None:
        self.namespace, self.registry = namespace, registry
        self.version, self.previous_version = version, previous_version
        self.token, self.server_version = token, server_version
        self.settings = settings or Settings()
        self._seed = seed
        self.traffic_routing = traffic_routing
        self._loop_thread: int | None = None
        self.world = self._seeded_world()
        self._snapshot = ({key: self.world.store.get(*key) for key in self.world.store.keys()},
                          copy.deepcopy(self.world.kubelet.runs))
        self.api = KubeApi(self)
        self.app = self.api.app

    def _seeded_world(self) -> World:
        world = World(self.settings, self._seed)
        seed(world, self.namespace, self.registry, self.version, self.previous_version, self.traffic_routing)
        return world

    # -- plumbing --------------------------------------------------------------------------------

    @property
    def store(self):  # noqa: ANN201 - the live Store
        return self.world.store

    @property
    def cluster(self):  # noqa: ANN201 - the live Cluster
        return self.world.cluster

    @property
    def kubelet(self):  # noqa: ANN201
        return self.world.kubelet

    def _owner_loop(self) -> tuple[asyncio.AbstractEventLoop | None, int | None]:
        return self.world.cluster.scheduler.loop, self._loop_thread

    def _bind_loop(self) -> None:
        scheduler = self.world.cluster.scheduler
        if scheduler.loop is None:
            scheduler.attach(asyncio.get_running_loop())
            self._loop_thread = threading.get_ident()

    async def start(self) -> None:
        """Bind the controllers to the running event loop (the first request does it too)."""
        self._bind_loop()

    async def stop(self) -> None:
        """End every open watch and stop the controllers' timers."""
        self.world.cluster.scheduler.cancel_all()
        self.world.store.close_watchers()

    def pod_log(self, pod: Obj, container: str | None, previous: bool) -> str:
        return container_log(pod, self.world.kubelet.runs.get(pod["metadata"]["uid"]), container, previous)

    # -- faults and reset --------------------------------------------------------------------------

    @on_loop
    def inject(self, kind: str, service: str, **params: Any) -> Obj:
        """Apply the fault `kind` (a key of FAULTS) to `service` with keyword parameters; FaultError if unknown."""
        if kind not in FAULTS:
            raise FaultError(f"unknown fault {kind!r}; known: {', '.join(FAULTS)}")
        method = getattr(self, FAULTS[kind][0])
        try:
            return method(service, **params)
        except TypeError as exc:
            raise FaultError(f"bad parameters for {kind!r}: {exc}") from None

    @on_loop
    def reset(self) -> None:
        """Put the cluster back to the seed. resourceVersions keep increasing and open watches stay open: they see
        the changes (DELETED for objects that are gone, MODIFIED/ADDED for the seed's)."""
        objects, runs = self._snapshot
        live = self.world
        live.cluster.scheduler.cancel_all()
        live.forget_timing()
        live.cluster.recorder.forget()
        store = live.store
        wanted = copy.deepcopy(objects)
        for key in [k for k in store.keys() if k not in wanted]:
            store.delete(*key)
        for key, obj in sorted(wanted.items(), key=lambda kv: _order(kv[0][0])):
            assert obj is not None
            if store.get(*key) is None:
                store.create(key[0], obj)
            else:
                store.replace(key[0], obj)
        live.kubelet.runs = copy.deepcopy(runs)

    # -- read helpers (thread-safe) ----------------------------------------------------------------

    @on_loop
    def get(self, resource: str, name: str, namespace: str | None = None) -> Obj | None:
        """A copy of one stored object (resource is the plural: deployments, rollouts, replicasets, pods...)."""
        return self.world.store.get(resource, self.namespace if namespace is None else namespace, name)

    @on_loop
    def list(self, resource: str, namespace: str | None = None) -> list[Obj]:
        return self.world.store.list(resource, self.namespace if namespace is None else namespace)

    @on_loop
    def summary(self) -> dict[str, Obj]:
        """Per workload: kind, image, revision, replica counts, Progressing reason / phase, and pod states."""
        out: dict[str, Obj] = {}
        for kind in ("deployments", "rollouts"):
            for obj in self.world.store.list(kind, self.namespace):
                status = obj.get("status") or {}
                progressing = next((c for c in status.get("conditions") or [] if c["type"] == "Progressing"), {})
                pods = [p for rs in self.world.store.owned_by("replicasets", obj)
                        for p in self.world.store.owned_by("pods", rs)]
                out[obj["metadata"]["name"]] = {
                    "kind": obj["kind"],
                    "image": obj["spec"]["template"]["spec"]["containers"][0]["image"],
                    "revision": (obj["metadata"].get("annotations") or {}).get(
                        "deployment.kubernetes.io/revision" if kind == "deployments" else "rollout.argoproj.io/revision"),
                    "replicas": obj["spec"].get("replicas", 1),
                    "updated": status.get("updatedReplicas", 0),
                    "ready": status.get("readyReplicas", 0),
                    "available": status.get("availableReplicas", 0),
                    "progressing": progressing.get("reason"),
                    "phase": status.get("phase"),
                    "pods": {p["metadata"]["name"]: pod_status_reason(p)[0] for p in pods},
                }
        return out


def _order(resource: str) -> int:
    return ["namespaces", "deployments", "rollouts", "replicasets", "pods", "events"].index(resource)
