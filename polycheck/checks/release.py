"""Which services this release changed: only those may be rolled back.

In order of precedence:
1. `--released order,payment`: the release manager says so;
2. Kubernetes: a Rollout with a canary in progress (its current pod hash is not the stable one), a service
   whose current ReplicaSet (or Rollout revision) was created at or after `--since`, or whose image tag is
   the release version;
3. neither known (no cluster access, no --since nor release version): the scope is unknown (`known` False):
   it lists every service, and what may be done with it is the run purpose's rule (polycheck.rollback.purpose).

A canary run's scope is the Rollouts with a canary in progress (`canary_scope`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from collections.abc import Callable

from polycheck.core.config import EnvConfig

if TYPE_CHECKING:
    from polycheck.clients.kube import Kube


@dataclass(frozen=True)
class ReleaseScope:
    """The services this release changed, and how that was found out."""

    services: frozenset[str]
    source: str
    known: bool = True  # False: nothing says what this release changed (then `services` is every service)

    def includes(self, service: str) -> bool:
        return service in self.services

    def describe(self) -> str:
        return f"{', '.join(sorted(self.services)) or 'no service'} ({self.source})"


def parse_released(text: str | None, known: list[str]) -> frozenset[str] | None:
    """`--released order,payment` as a set; None when not given. Raises ValueError naming an unknown service."""
    if not text:
        return None
    names = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(names - set(known))
    if unknown:
        raise ValueError(f"--released names unknown service(s) {', '.join(unknown)}; configured: {', '.join(known)}")
    return names


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _image_tags(workload: dict[str, Any]) -> set[str]:
    containers = workload.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []
    return {str(c.get("image", "")).rsplit(":", 1)[-1] for c in containers if ":" in str(c.get("image", ""))}


def from_cluster(config: EnvConfig, kube: Kube, *, since: float | None, release_version: str | None) -> ReleaseScope | None:
    """The services whose current revision is newer than `since`, or whose image is the release version (read for
    every service at once). A service whose workload cannot be read counts as released on its own, and the scope
    says so; a cluster that cannot be read for any service raises, as every service is then unknown."""
    from polycheck.clients.kube import KubeNotFound, KubeUnavailable
    from polycheck.checks.rollout import current_replicaset

    if since is None and not release_version:
        return None

    def released(name: str) -> bool:
        workload = kube.workload(config.service(name).workload, config.deployment_of(name))
        status = workload.get("status") or {}
        if workload.get("kind") == "Rollout" and status.get("currentPodHash") and status.get("stableRS") \
                and status["currentPodHash"] != status["stableRS"]:
            return True  # a canary of a new revision is in progress: this release is rolling it out
        if release_version and release_version.lstrip("v") in {t.lstrip("v") for t in _image_tags(workload)}:
            return True
        if since is not None:
            created = (current_replicaset(kube, workload) or {}).get("metadata", {}).get("creationTimestamp")
            return bool(created) and _epoch(str(created)) >= since
        return False

    def read(name: str) -> tuple[str, bool | None, BaseException | None]:
        try:
            return name, released(name), None
        except (KubeNotFound, KubeUnavailable) as exc:
            return name, None, exc

    names = list(config.service_names)
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(names))), thread_name_prefix="polycheck-release") as pool:
        found = list(pool.map(read, names))
    errors = [exc for _, answer, exc in found if answer is None and exc is not None]
    if errors and len(errors) == len(names):
        raise errors[0]
    unknown = sorted(name for name, answer, _ in found if answer is None)
    how = " or ".join(filter(None, ["canary in progress", f"image tag {release_version}" if release_version else "",
                                    "revision created since --since" if since is not None else ""]))
    source = f"from Kubernetes: {how}"
    if unknown:
        source += f"; {', '.join(unknown)} unknown ({errors[0]}), so counted as released"
    return ReleaseScope(frozenset({name for name, answer, _ in found if answer} | set(unknown)), source)


def resolve(
    config: EnvConfig,
    *,
    explicit: frozenset[str] | None,
    since: float | None,
    release_version: str | None,
    kube_factory: Callable[[], Kube],
) -> ReleaseScope:
    if explicit is not None:
        return ReleaseScope(explicit, "--released")
    from polycheck.clients.kube import KubeNotFound, KubeUnavailable

    try:
        scope = from_cluster(config, kube_factory(), since=since, release_version=release_version)
    except (KubeUnavailable, KubeNotFound) as exc:
        return ReleaseScope(frozenset(config.service_names), f"unknown: cannot read the cluster: {exc}", known=False)
    if scope is None:
        return ReleaseScope(frozenset(config.service_names), "unknown: no --released, --since nor --release-version", known=False)
    return scope


def canary_scope(config: EnvConfig, kube_factory: Callable[[], Kube]) -> ReleaseScope:
    """The services whose Rollout has a canary in progress (not aborted): all a canary run may act on."""
    from polycheck.clients.argo import canary_state
    from polycheck.clients.kube import KubeNotFound, KubeUnavailable

    rollouts = [name for name in config.service_names if config.service(name).workload == "rollout"]
    try:
        kube = kube_factory()
        found = frozenset(name for name in rollouts if canary_state(kube.rollout(config.deployment_of(name))).in_progress)
    except (KubeUnavailable, KubeNotFound) as exc:
        return ReleaseScope(frozenset(), f"unknown: cannot read the Rollouts: {exc}", known=False)
    return ReleaseScope(found, "from Kubernetes: Rollouts with a canary in progress")
