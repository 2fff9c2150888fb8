"""Child processes a run starts (the local stack, Prometheus, the Pushgateway): wait until ready, stop for good."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import httpx

from polycheck.core.polling import poll


def wait_ready(process: subprocess.Popen[bytes], ready: Callable[[], bool], *, timeout: float, what: str) -> str:
    """Poll until `ready()` or the process exits: "ready" or "exited"; raises PollTimeout naming `what`."""
    def state() -> str:
        if process.poll() is not None:
            return "exited"
        return "ready" if ready() else "starting"

    return poll(state, lambda s: s != "starting", timeout=timeout, interval=0.02, max_interval=0.2, what=what)


def answers_ready(url: str) -> Callable[[], bool]:
    """A readiness probe for a Prometheus-style `/-/ready` endpoint."""
    def ready() -> bool:
        try:
            return httpx.get(f"{url}/-/ready", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    return ready


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate, and kill when it does not end within `timeout`."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
