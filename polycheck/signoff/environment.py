"""What was checked, as the report's environment: the release, each service's version as its /health said, each
image Kubernetes runs, and the checker's own versions (polycheck and its git commit, Chromium, Playwright).

Read once per run on the xdist controller, in a background thread started with the session, so the checks
do not wait for it; every read has a timeout and a failed read is written as such, never raised.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet

import os
import platform
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any
from collections.abc import Callable

import httpx

from polycheck.clients.capped import BodyTooLarge, send_capped
from polycheck.checks.browser import choose_chromium
from polycheck.core.config import EnvConfig
from polycheck.clients.http import shared_tls
from polycheck.core.redact import redact_secrets

NOT_READ = "(not read)"


def service_versions(config: EnvConfig, timeout: httpx.Timeout, skip: AbstractSet[str] = frozenset()) -> dict[str, str]:
    """service -> the version its /health reports (or why there is none)."""

    def read(name: str) -> tuple[str, str]:
        url = config.service(name).url or (config.gateway.url if name == "gateway" else "")
        if name in skip:
            return name, "(not read: the service hangs)"
        if not url:
            return name, "(no URL)"
        try:
            with httpx.Client(timeout=timeout, headers={"X-Synthetic": "true", "User-Agent": "polycheck-report"},
                              verify=shared_tls()) as client:
                response = send_capped(client, client.build_request("GET", url.rstrip("/") + "/health"),
                                       config.http.max_body_bytes, "http.max_body_bytes")
            body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
            version = body.get("version") if isinstance(body, dict) else None
            return name, str(version) if version else f"(HTTP {response.status_code}, no version)"
        except (httpx.HTTPError, ValueError, BodyTooLarge) as exc:
            return name, f"(not read: {type(exc).__name__})"

    with ThreadPoolExecutor(max_workers=max(1, len(config.service_names))) as pool:
        return dict(pool.map(read, config.service_names))


def service_images(config: EnvConfig, connect: Callable[[], Any], attempts: int = 2) -> dict[str, str]:
    """service -> the image(s) its Deployment or Rollout runs, as the Kubernetes API says. A cluster that could not
    be read at all is asked once more, with a new connection, before the sign-off says so."""
    images: dict[str, str] = {}
    for _ in range(max(1, attempts)):
        images = _service_images(config, connect)
        if "*" not in images:
            break
    return images


def _service_images(config: EnvConfig, connect: Callable[[], Any]) -> dict[str, str]:
    try:
        kube = connect()
    except Exception as exc:  # noqa: BLE001 - the cluster may be absent: say so
        return {"*": f"(not read: {redact_secrets(str(exc))[:200]})"}
    images: dict[str, str] = {}
    try:
        for name in config.service_names:
            try:
                workload = kube.workload(config.service(name).workload, config.deployment_of(name))
                containers = (((workload.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
                images[name] = ", ".join(str(c.get("image")) for c in containers) or "(no container)"
            except Exception as exc:  # noqa: BLE001
                why = (redact_secrets(str(exc)).splitlines() or [type(exc).__name__])[0][:160]
                if not images:  # the first read failed: the cluster is not there, do not wait for each service
                    return {"*": f"(not read: {why})"}
                images[name] = f"(not read: {why})"
    finally:
        try:
            kube.close()
        except Exception:  # noqa: BLE001
            pass
    return images


def _command_output(argv: list[str], cwd: Path | None = None, timeout: float = 10.0) -> str:
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def chromium_version(environ: dict[str, str] | None = None) -> str:
    choice = choose_chromium(None, environ if environ is not None else os.environ)
    if choice is None or choice.executable is None:
        return "(no system chromium; Playwright's own if installed)"
    return _command_output([choice.executable, "--version"]) or f"{choice.executable} (version not read)"


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "(not installed)"


def checker_versions(root: Path) -> dict[str, str]:
    sha = os.environ.get("GITHUB_SHA") or _command_output(["git", "rev-parse", "HEAD"], cwd=root, timeout=5)
    dirty = _command_output(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, timeout=5) if sha else ""
    return {
        "polycheck.version": _version("polyshop-checks"),
        "polycheck.git_sha": (sha[:12] + ("-dirty" if dirty else "")) if sha else "(not a git checkout)",
        "playwright.version": _version("playwright"),
        "chromium.version": chromium_version(),
        "pytest.version": _version("pytest"),
        "python.version": platform.python_version(),
    }


class EnvironmentProbe:
    """Gathers the environment in a background thread; `properties()` waits for it up to a deadline."""

    def __init__(self, gather: Callable[[], dict[str, str]]) -> None:
        self._gather = gather
        self._result: dict[str, str] = {}
        self._error = ""
        self._thread = threading.Thread(target=self._run, name="polycheck-environment", daemon=True)

    def start(self) -> EnvironmentProbe:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._result = self._gather()
        except Exception as exc:  # noqa: BLE001 - the report says what could not be read
            self._error = f"{type(exc).__name__}: {redact_secrets(str(exc))[:200]}"

    def properties(self, timeout: float) -> dict[str, str]:
        self._thread.join(timeout)
        if self._thread.is_alive():
            return {"environment": f"(not read within {timeout:g} s)"}
        if self._error:
            return {"environment": f"(not read: {self._error})"}
        return dict(self._result)


def environment_properties(head: dict[str, str], versions: dict[str, str], images: dict[str, str],
                           checker: dict[str, str]) -> dict[str, str]:
    """The environment as ordered `key=value` properties."""
    props = dict(head)
    for name, version in versions.items():
        props[f"service.{name}.version"] = version
    for name, image in images.items():
        props["kubernetes.images" if name == "*" else f"service.{name}.image"] = image
    props.update(checker)
    return props


def write_properties(path: Path, props: dict[str, str]) -> None:
    """Java-properties text, as Allure reads `environment.properties`."""

    def escape(text: str, key: bool = False) -> str:
        text = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
        return text.replace("=", "\\=").replace(":", "\\:").replace(" ", "\\ ") if key else text

    path.write_text("".join(f"{escape(k, key=True)}={escape(redact_secrets(str(v)))}\n" for k, v in props.items()))
