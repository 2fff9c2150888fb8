"""The kubernetes client is imported in whichever thread first needs the cluster. Its import chain reaches
`requests`, which silences urllib3's SOCKS DependencyWarning with a process-wide filter and then imports
`urllib3.contrib.socks`; pytest's main thread restores the filter list after every test, so a check thread's
import could lose requests' filter and print the warning after the sign-off (seen once in a fresh clone's make test).
These run in a fresh interpreter, with requests' filter made to be lost, as the race loses it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("socks") is not None,
                                reason="PySocks is installed here: urllib3 has no SOCKS warning to give")

LOSE_REQUESTS_FILTER = """
import threading, warnings
warnings.resetwarnings()
warnings.simplefilter("error")      # what pytest's filterwarnings = error makes of any warning that gets through
warnings.simplefilter = lambda *args, **kwargs: None   # requests' own silencing is lost, as in the race
"""


def run(body: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", LOSE_REQUESTS_FILTER + textwrap.dedent(body)],
                          capture_output=True, text=True, timeout=60)


def test_the_client_imported_from_a_check_thread_gives_no_socks_warning() -> None:
    done = run("""
        from polycheck.clients import kube
        failed = []
        def load():
            try:
                kube._client_library()
            except BaseException as exc:
                failed.append(f"{type(exc).__name__}: {exc}")
        thread = threading.Thread(target=load)
        thread.start()
        thread.join()
        print("FAILED" if failed else "LOADED", *failed)
        import requests, kubernetes.config  # both really imported, in that thread
    """)
    assert done.returncode == 0 and done.stdout.startswith("LOADED"), done.stdout + done.stderr
    assert "SOCKS" not in done.stdout + done.stderr, done.stdout + done.stderr


def test_the_same_import_without_the_mend_does_warn() -> None:
    """The reproduction the mend is measured against: the same lost filter, the import without `_without_socks_support`."""
    done = run("""
        import kubernetes.config
    """)
    assert done.returncode != 0 and "DependencyWarning" in done.stderr and "PySocks" in done.stderr, done.stderr


def test_a_socks_proxy_without_pysocks_is_named_when_connecting(tmp_path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(textwrap.dedent("""
        apiVersion: v1
        kind: Config
        current-context: shop
        contexts: [{name: shop, context: {cluster: shop, user: sre, namespace: polyshop}}]
        clusters: [{name: shop, cluster: {server: "https://127.0.0.1:9", proxy-url: "socks5://127.0.0.1:1080"}}]
        users: [{name: sre, user: {token: not-a-real-token}}]
    """))
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        from polycheck.clients.kube import Kube, KubeUnavailable
        from polycheck.core.config import KubernetesConfig
        try:
            Kube.connect(KubernetesConfig(kubeconfig={str(kubeconfig)!r}, context="shop", namespace="polyshop"))
        except KubeUnavailable as exc:
            print(exc)
        else:
            print("CONNECTED")
    """)], capture_output=True, text=True, timeout=60)
    assert "context shop of kubeconfig" in done.stdout and "PySocks" in done.stdout, done.stdout + done.stderr
    assert "DependencyWarning" not in done.stderr, done.stderr
