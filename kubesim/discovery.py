"""Discovery documents: /version, /api, /apis, /apis/<group> and the APIResourceLists.

Only the legacy (unaggregated) discovery format is served. Clients that ask for aggregated discovery
(`Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,...,application/json`) fall back to
it when the answer's Content-Type is plain `application/json`, as kubectl and client-go do.
"""

from __future__ import annotations

import base64
import hashlib

from .meta import RESOURCES, Obj

GROUPS = {"apps": "v1", "batch": "v1", "rbac.authorization.k8s.io": "v1", "argoproj.io": "v1alpha1",
          "monitoring.coreos.com": "v1", "coordination.k8s.io": "v1"}


def version_info(git_version: str) -> Obj:
    """Every VersionInfo field (k8s.io/apimachinery/pkg/version.Info)."""
    core = git_version.lstrip("v").split("-")[0].split("+")[0]
    major, minor = (core.split(".") + ["0", "0"])[:2]
    return {
        "major": major,
        "minor": minor,
        "emulationMajor": major,
        "emulationMinor": minor,
        "minCompatibilityMajor": major,
        "minCompatibilityMinor": str(max(int(minor) - 1, 0)),
        "gitVersion": git_version,
        "gitCommit": hashlib.sha1(git_version.encode()).hexdigest(),
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.4",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> Obj:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group(name: str, version: str) -> Obj:
    gv = {"groupVersion": f"{name}/{version}", "version": version}
    return {"name": name, "versions": [gv], "preferredVersion": gv}


GROUPS["networking.k8s.io"] = "v1"  # NetworkPolicy: deploy/base/networkpolicy.yaml


def api_group_list() -> Obj:
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group(n, v) for n, v in GROUPS.items()]}


def api_group(name: str) -> Obj | None:
    if name not in GROUPS:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, GROUPS[name])}


def resource_list(group: str, version: str) -> Obj | None:
    """The APIResourceList of one group/version ("" is the core group), subresources included."""
    resources = [r for r in RESOURCES.values() if r.group == group and r.version == version]
    if not resources:
        return None
    items: list[Obj] = []
    for r in resources:
        entry: Obj = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
                      "verbs": sorted(r.verbs)}
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        digest = hashlib.sha256(f"{r.group}/{r.version}/{r.plural}".encode()).digest()[:8]
        entry["storageVersionHash"] = base64.b64encode(digest).decode()
        items.append(entry)
        for sub, verbs in r.subresources.items():
            kind = {"scale": "Scale", "log": "Pod"}.get(sub, r.kind)
            sub_entry: Obj = {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                              "kind": kind, "verbs": sorted(verbs)}
            if sub == "scale":
                sub_entry.update({"group": "autoscaling", "version": "v1"})
            items.append(sub_entry)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": items}
