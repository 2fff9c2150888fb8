"""Run a KubeSimulator behind a real HTTP server on a loopback port, in an event loop on a background thread:
for tests and tools that drive it with the official client or kubectl from ordinary (synchronous) code.

    with SimulatorThread() as kube:
        kube.write_kubeconfig(tmp_path / "kubeconfig")
        kube.sim.crashloop_rollout("order")
        poll(lambda: kube.sim.summary()["order-service"]["progressing"], lambda r: r == "ProgressDeadlineExceeded",
             timeout=10, what="order-service timed out")

`poll` waits for what the simulated controllers do next, with a deadline, and says what it last saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any, TypeVar
from collections.abc import Callable, Iterator

import uvicorn

from .kubeconfig import write_kubeconfig
from .simulator import KubeSimulator

T = TypeVar("T")


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the thread is not the main one: leave signals alone
        yield


class SimulatorThread:
    """A KubeSimulator served by uvicorn on 127.0.0.1:<free port>, its loop running on a daemon thread."""

    def __init__(self, sim: KubeSimulator | None = None, host: str = "127.0.0.1") -> None:
        self.sim = sim or KubeSimulator()
        self.host = host
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="kube-simulator", daemon=True)
        self._server: _Server | None = None
        self._task: asyncio.Task[Any] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def write_kubeconfig(self, path: str | os.PathLike[str], **kwargs: Any) -> Path:
        return write_kubeconfig(path, self.url, token=self.sim.token, namespace=self.sim.namespace, **kwargs)

    async def _start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.sim.app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=1)
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        await self.sim.start()
        for _ in range(2000):
            if self._server.started:
                return
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.005)
        raise RuntimeError(f"the simulator's server on {self.url} did not start")

    async def _stop(self) -> None:
        await self.sim.stop()
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task

    def start(self) -> SimulatorThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=30)
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()

    def __enter__(self) -> SimulatorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def poll(probe: Callable[[], T], until: Callable[[T], bool], *, timeout: float, what: str, interval: float = 0.1,
         max_interval: float = 1.0, describe: Callable[[T], str] = repr) -> T:
    """Call `probe` until `until(value)` holds and return that value; after `timeout` seconds an AssertionError
    names `what`, the attempts and the last value seen. The interval grows by half up to `max_interval`."""
    deadline = time.monotonic() + timeout
    attempts, wait = 0, interval
    while True:
        attempts += 1
        value = probe()
        if until(value):
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"{what}: not reached within {timeout:g} s ({attempts} attempts); "
                                 f"last observed: {describe(value)}")
        time.sleep(min(wait, remaining))
        wait = min(wait * 1.5, max_interval)
