"""Which services this release changed: only those may be rolled back.

In order of precedence:
1. `--released order,payment`: the release manager says so;
2. Kubernetes: a Rollout with a canary in progress (its current pod hash is not the stable one), a service
   whose current ReplicaSet (or Rollout revision) was created at or after `--since`, or whose image tag is
   the release version;
3. neither known (no cluster access, no --since nor release version): every service counts as released,
   and the scope says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from typing import TYPE_CHECKING, Any

from .config import EnvConfig

if TYPE_CHECKING:
    from .kube import Kube


@dataclass(frozen=True)
class ReleaseScope:
    """The services this release changed, and how that was found out."""

    services: frozenset[str]
    source: str

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


def from_cluster(config: EnvConfig, kube: "Kube", *, since: float | None, release_version: str | None) -> ReleaseScope | None:
    """The services whose current revision is newer than `since`, or whose image is the release version."""
    from .rollout import current_replicaset

    if since is None and not release_version:
        return None
    released: set[str] = set()
    for name in config.service_names:
        workload = kube.workload(config.service(name).workload, config.deployment_of(name))
        status = workload.get("status") or {}
        if workload.get("kind") == "Rollout" and status.get("currentPodHash") and status.get("stableRS") \
                and status["currentPodHash"] != status["stableRS"]:
            released.add(name)  # a canary of a new revision is in progress: this release is rolling it out
            continue
        if release_version and release_version.lstrip("v") in {t.lstrip("v") for t in _image_tags(workload)}:
            released.add(name)
            continue
        if since is not None:
            rs = current_replicaset(kube, workload) or {}
            created = rs.get("metadata", {}).get("creationTimestamp")
            if created and _epoch(str(created)) >= since:
                released.add(name)
    how = " or ".join(filter(None, ["canary in progress", f"image tag {release_version}" if release_version else "",
                                    "revision created since --since" if since is not None else ""]))
    return ReleaseScope(frozenset(released), f"from Kubernetes: {how}")


def resolve(
    config: EnvConfig,
    *,
    explicit: frozenset[str] | None,
    since: float | None,
    release_version: str | None,
    kube_factory: Callable[[], "Kube"],
) -> ReleaseScope:
    if explicit is not None:
        return ReleaseScope(explicit, "--released")
    from .kube import KubeNotFound, KubeUnavailable

    try:
        scope = from_cluster(config, kube_factory(), since=since, release_version=release_version)
    except (KubeUnavailable, KubeNotFound) as exc:
        return ReleaseScope(frozenset(config.service_names), f"unknown (cannot read the cluster: {exc}): every service counts as released")
    if scope is None:
        return ReleaseScope(frozenset(config.service_names), "unknown (no --released, --since nor release version): every service counts as released")
    return scope
