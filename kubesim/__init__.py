"""A Kubernetes API server simulator, serving the PolyShop workloads to the local PolyShop stack and its tests.

The official `kubernetes` Python client and a real `kubectl` talk to it over HTTP through a generated kubeconfig:

    sim = KubeSimulator()
    server = HttpServer(sim.app, "127.0.0.1")      # any ASGI server, on the event loop that runs the controllers
    await server.start(); await sim.start()
    write_kubeconfig(path, server.url, token=sim.token)
    sim.crashloop_rollout("order")                  # faults: see kubesim.faults.FAULTS
    sim.reset()                                     # back to the seed

Modules: meta (resource types, Status errors, hashes), store (objects, resourceVersion, watch fan-out),
patches (JSON, merge and strategic merge patch), defaults (defaulting, validation), kubelet (pod lifecycle),
replicaset_controller (ReplicaSet controller), replicaset_owner (the ReplicaSet handling the Deployment and the
Argo Rollouts controllers share), controller (Deployment controller), rollouts (Argo Rollouts canary controller),
tables (server-side printing), discovery, api (the Starlette app), seed, faults, kubeconfig, simulator, testing
(a simulator on a background thread, and `poll`, for tests).
"""

from .cluster import Settings
from .faults import FAULTS, FaultError
from .kubeconfig import DEFAULT_CONTEXT, DEFAULT_TOKEN, kubeconfig_dict, write_kubeconfig
from .simulator import KubeSimulator

__all__ = [
    "DEFAULT_CONTEXT", "DEFAULT_TOKEN", "FAULTS", "FaultError", "KubeSimulator", "Settings", "kubeconfig_dict",
    "write_kubeconfig",
]
