"""Cross-run SKU leases: two runs against one environment never hold the same SKU at once.

A stock assertion ("available moved by exactly 2") holds only while no other run moves that SKU's stock, and
several runs share an environment (probes in several places, a probe beside a deploy run, `-n` workers). So a
check takes its SKU's lease before it reads the stock, and gives it back when it has cleaned up:

- `FileLeases`: an exclusive `flock` per SKU in a folder shared by every run on this machine against the same
  environment; the kernel drops it when the process dies (also on SIGKILL), so a killed run holds nothing;
- `KubeLeases`: a `coordination.k8s.io/v1` Lease per SKU in the shop's namespace (`polycheck-sku-<sku>`), held
  for `ttl` seconds (a run killed hard holds it until then), for runs on several machines that see one cluster.

`take` never waits: the pool tries the next SKU, and waits on the leases only when every SKU is held.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import tempfile
import threading
import time
from datetime import datetime, UTC
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from polycheck.clients.kube import Kube


class CrossRunLeases(Protocol):
    """What the SKU pool asks of a lease store."""

    where: str  # how the terminal and the failures name it

    def take(self, sku: str) -> bool: ...

    def give_back(self, sku: str) -> None: ...


def _safe(sku: str) -> str:
    cleaned = re.sub(r"[^a-z0-9-]+", "-", sku.lower()).strip("-")[:40]
    return f"{cleaned}-{hashlib.sha256(sku.encode()).hexdigest()[:8]}"


class FileLeases:
    """One `flock`ed file per SKU under `folder` (per environment)."""

    def __init__(self, environment_key: str, folder: Path | None = None) -> None:
        base = folder or Path(os.environ.get("POLYCHECK_LEASE_DIR") or Path(tempfile.gettempdir()) / "polycheck-sku-leases")
        self.folder = base / hashlib.sha256(environment_key.encode()).hexdigest()[:16]
        self.folder.mkdir(parents=True, exist_ok=True)
        self.where = f"file locks in {self.folder}"
        self._held: dict[str, IO[bytes]] = {}
        self._lock = threading.Lock()

    def take(self, sku: str) -> bool:
        with self._lock:
            if sku in self._held:
                return False  # held by another check of this run: the pool's own lease says so first
            handle = open(self.folder / f"{_safe(sku)}.lock", "ab")  # noqa: SIM115 - held open while leased
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return False
            self._held[sku] = handle
            return True

    def give_back(self, sku: str) -> None:
        with self._lock:
            handle = self._held.pop(sku, None)
        if handle is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()

    def close(self) -> None:
        """Give back every SKU still held (the process's end does the same)."""
        for sku in list(self._held):
            self.give_back(sku)


class KubeLeases:
    """A coordination.k8s.io Lease per SKU, held by this run (`holder`) for `ttl` seconds."""

    def __init__(self, kube: Kube, holder: str, ttl: float = 300.0) -> None:
        self.kube, self.holder, self.ttl = kube, holder, ttl
        self.where = f"Leases polycheck-sku-* in namespace {kube.namespace}"

    def _name(self, sku: str) -> str:
        return f"polycheck-sku-{_safe(sku)}"

    def _body(self, sku: str, resource_version: str | None = None) -> dict[str, object]:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        metadata: dict[str, object] = {"name": self._name(sku), "labels": {"app.kubernetes.io/name": "polycheck"},
                                       "annotations": {"polycheck.polyshop.io/sku": sku}}
        if resource_version:
            metadata["resourceVersion"] = resource_version
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata,
                "spec": {"holderIdentity": self.holder, "leaseDurationSeconds": int(self.ttl),
                         "acquireTime": now, "renewTime": now}}

    def take(self, sku: str) -> bool:
        from polycheck.clients.kube import KubeConflict

        try:
            self.kube.create_lease(self._body(sku))
            return True
        except KubeConflict:
            pass
        lease = self.kube.lease(self._name(sku))
        spec = lease.get("spec") or {}
        if spec.get("holderIdentity") not in (None, "", self.holder) and not _expired(spec):
            return False
        try:  # expired, or given back: take it over (the resourceVersion makes a race lose, not share)
            self.kube.replace_lease(self._name(sku), self._body(sku, lease["metadata"].get("resourceVersion")))
            return True
        except KubeConflict:
            return False

    def give_back(self, sku: str) -> None:
        from polycheck.clients.kube import KubeNotFound, KubeUnavailable

        try:
            lease = self.kube.lease(self._name(sku))
            if (lease.get("spec") or {}).get("holderIdentity") == self.holder:
                self.kube.delete_lease(self._name(sku))
        except (KubeNotFound, KubeUnavailable):
            pass  # it expires on its own


def _expired(spec: dict[str, object]) -> bool:
    renewed = str(spec.get("renewTime") or spec.get("acquireTime") or "")
    if not renewed:
        return True
    try:
        at = datetime.fromisoformat(renewed.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return True
    return at + float(spec.get("leaseDurationSeconds") or 0) < time.time()  # type: ignore[arg-type]
