"""A kubeconfig for the simulator: plain HTTP on loopback, a bearer-token user, context `polyshop-local`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CONTEXT = "polyshop-local"
DEFAULT_TOKEN = "polyshop-local-token"


def kubeconfig_dict(server: str, *, namespace: str = "polyshop", context: str = DEFAULT_CONTEXT,
                    token: str | None = DEFAULT_TOKEN, user: str = "polyshop-checks") -> dict[str, Any]:
    """The kubeconfig document for `server` (e.g. http://127.0.0.1:PORT); `token=None` means no credentials."""
    cluster = f"{context}-cluster"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": cluster, "cluster": {"server": server}}],
        "users": [{"name": user, "user": {"token": token} if token else {}}],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user, "namespace": namespace}}],
        "current-context": context,
    }


def write_kubeconfig(path: str | os.PathLike[str], server: str, *, namespace: str = "polyshop",
                     context: str = DEFAULT_CONTEXT, token: str | None = DEFAULT_TOKEN) -> Path:
    """Write the kubeconfig for `server` to `path` (mode 0600, as kubectl writes its own) and return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(kubeconfig_dict(server, namespace=namespace, context=context, token=token),
                          sort_keys=False)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    return target
