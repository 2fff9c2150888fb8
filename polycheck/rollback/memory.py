"""A rollback's memory, kept on the workload it changed, so every run (any pod, any place) reads the same one.

After an undo of ours, the Deployment or Rollout carries the annotation `polycheck.polyshop.io/last-rollback`:
which revision (pod-template hash) was undone, which one it restored, by which run, when, for which release.
Before the next undo of that workload a run reads it back, and refuses:

- when the workload still runs the revision our rollback restored: the service is still failing after its
  rollback, so the failure is not this release's (a config change at the same image tag made every run count
  the service as released, and each run undid whatever was current: revision 4 = 2, 5 = 3, 6 = 4);
- when the undo would restore the revision our rollback undid (the same release undone twice).

Both escalate instead, naming the revisions.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, UTC
from typing import TYPE_CHECKING, Any

from polycheck.clients.kube import revision_of, template_hash

if TYPE_CHECKING:
    from polycheck.clients.kube import Kube

ANNOTATION = "polycheck.polyshop.io/last-rollback"
UNDO_ACTIONS = frozenset({"kubernetes-undo", "argo-undo", "kubernetes-set-image"})  # those that change the revision


@dataclass(frozen=True)
class Memory:
    """What our last rollback of a workload did."""

    undone_hash: str
    undone_revision: int
    restored_hash: str
    restored_revision: int
    run_id: str = ""
    at: str = ""
    release: str = ""

    @classmethod
    def of(cls, workload: dict[str, Any]) -> Memory | None:
        text = ((workload.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION)
        if not text:
            return None
        try:
            data = json.loads(text)
            return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        except (ValueError, TypeError):
            return None  # written by someone else: no memory of ours


@dataclass(frozen=True)
class Revisions:
    """A workload's current revision and the one an undo would restore (hash, number)."""

    current_hash: str
    current_revision: int
    previous_hash: str
    previous_revision: int


def revisions(kube: Kube, kind: str, name: str) -> tuple[dict[str, Any], Revisions]:
    """The workload and its current and previous revisions, read from its ReplicaSets."""
    from polycheck.clients.kube import selector_of

    workload = kube.workload(kind, name)
    current = revision_of(workload)
    sets = kube.replicasets(selector_of(workload))
    now = next((rs for rs in sets if revision_of(rs) == current), None)
    older = [rs for rs in sets if 0 < revision_of(rs) < current]
    before = max(older, key=revision_of) if older else None
    return workload, Revisions(template_hash(now) or "" if now else "", current,
                               (template_hash(before) or "") if before else "", revision_of(before) if before else 0)


def refusal(service: str, memory: Memory | None, now: Revisions) -> str | None:
    """Why an undo of `service` must not run, given our last rollback of it (None: it may)."""
    if memory is None:
        return None
    when = f"by run {memory.run_id} at {memory.at}" if memory.run_id else "by polycheck"
    if now.current_hash and now.current_hash == memory.restored_hash:
        return (f"{service} is still failing after it was rolled back to revision {memory.restored_revision} "
                f"({memory.restored_hash}) {when}: not this release — nothing undone again")
    if now.previous_hash and now.previous_hash == memory.undone_hash:
        return (f"undoing {service} would restore revision {memory.undone_revision} ({memory.undone_hash}), which a rollback "
                f"of ours undid {when}: the same release is never undone twice")
    return None


def remember(kube: Kube, kind: str, name: str, before: Revisions, *, run_id: str, release: str) -> Memory:
    """Write what the undo just did onto the workload: the revision it undid and the one whose template it restored
    (by hash: the controller renumbers the restored revision, its template hash stays)."""
    memory = Memory(before.current_hash, before.current_revision, before.previous_hash, before.previous_revision,
                    run_id, datetime.now(UTC).isoformat(timespec="seconds"), release)
    body = {"metadata": {"annotations": {ANNOTATION: json.dumps(asdict(memory), separators=(",", ":"))}}}
    if kind == "rollout":
        kube.patch_rollout(name, body)
    else:
        kube.patch_deployment(name, body)
    return memory
