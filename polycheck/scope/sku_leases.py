"""Which cross-run lease store a run's SKU pool uses (`synthetic.sku_leases`), chosen once per process.

- `file` (the local stack's, and the fallback): flocks on this machine, per environment;
- `kubernetes`: Leases in the shop's namespace, for runs on several machines that see one cluster;
- `auto` (default): `kubernetes` when the env names a cluster (not the local stack) and its Leases can be read,
  else `file`;
- `off`: none (only the checks of one run are kept apart).
"""

from __future__ import annotations

import socket
import sys

from polycheck.clients.leases import CrossRunLeases, FileLeases, KubeLeases
from polycheck.core.config import EnvConfig

MODES = ("auto", "file", "kubernetes", "off")


def leases_for(config: EnvConfig, run_id: str) -> CrossRunLeases | None:
    mode = config.synthetic.sku_leases
    if mode == "off":
        return None
    key = f"{config.name}|{config.gateway.url}"
    names_a_cluster = bool(config.kubernetes.kubeconfig or config.kubernetes.context or config.kubernetes.in_cluster)
    if mode == "kubernetes" or (mode == "auto" and names_a_cluster and not config.environment.local_stack):
        from polycheck.clients.kube import Kube, KubeNotFound, KubeUnavailable

        try:
            kube = Kube.connect(config.kubernetes)
            try:
                kube.lease("polycheck-sku-leases-probe")
            except KubeNotFound:
                pass  # Leases can be read: the store works
            return KubeLeases(kube, holder=f"{socket.gethostname()}/{run_id}")
        except (KubeUnavailable, RuntimeError) as exc:
            if mode == "kubernetes":
                raise
            sys.stderr.write(f"polycheck: SKU leases fall back to file locks on this machine: the cluster's Leases "
                             f"cannot be used ({exc})\n")
    return FileLeases(key)
