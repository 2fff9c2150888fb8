"""`python -m stack`: start the local PolyShop stack on loopback ports and print where it listens."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
from pathlib import Path

from kubesim import DEFAULT_CONTEXT, KubeSimulator, write_kubeconfig

from .canary import CanaryRouter
from .runtime import HttpServer, Stack


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


async def _watch_parent(parent_pid: int, stop: asyncio.Event) -> None:
    while not stop.is_set():
        if os.getppid() != parent_pid:
            stop.set()
        await asyncio.sleep(0.5)


async def run(args: argparse.Namespace) -> None:
    stack = Stack(host=args.host)
    sim = KubeSimulator(traffic_routing=args.traffic_routing)
    kube_server = HttpServer(sim.app, args.host)
    await kube_server.start()
    await sim.start()
    workdir = Path(args.ready_file).parent if args.ready_file else Path(tempfile.mkdtemp(prefix="polyshop-kube-"))
    kubeconfig = write_kubeconfig(workdir / "kubeconfig", kube_server.url, token=sim.token)
    stack.kube = sim  # the control API's /kube/... routes drive it
    stack.shared["canary"] = CanaryRouter(sim)  # splits a Rollout's traffic between stable and canary pods
    await stack.start()
    info = stack.describe()
    info["kubernetes"] = {"url": kube_server.url, "kubeconfig": str(kubeconfig), "context": DEFAULT_CONTEXT}
    if args.ready_file:
        _write_atomically(Path(args.ready_file), json.dumps(info))
    starts_log = os.environ.get("POLYSHOP_STACK_STARTS")
    if starts_log:
        with open(starts_log, "a") as log:
            log.write(f"{info['pid']}\n")
    print(json.dumps(info, indent=2), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watcher = asyncio.create_task(_watch_parent(args.parent_pid, stop)) if args.parent_pid else None
    await stop.wait()
    if watcher:
        watcher.cancel()
    await stack.stop()
    await sim.stop()
    await kube_server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    parser.add_argument("--ready-file", help="write the stack's URLs here (JSON) once every service listens")
    parser.add_argument("--parent-pid", type=int, help="exit when this process is no longer the parent")
    parser.add_argument("--traffic-routing", action="store_true",
                        help="payment's Argo Rollout splits traffic by weight (NGINX) instead of by its ready pods")
    asyncio.run(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
