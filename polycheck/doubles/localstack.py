"""Start the local PolyShop stack (`python -m stack`) as a process, once per run, and stop it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polycheck.core.polling import PollTimeout
from polycheck.doubles.processes import stop_process, wait_ready

START_TIMEOUT_SECONDS = 30.0


class LocalStackError(RuntimeError):
    """The local stack could not be started or read."""


@dataclass(frozen=True)
class StackInfo:
    """Where a running local stack listens."""

    pid: int
    gateway: str
    services: dict[str, str]
    control: str
    kubeconfig: str = ""
    kube_context: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StackInfo:
        try:
            kube = data.get("kubernetes") or {}
            return cls(int(data["pid"]), data["gateway"], dict(data["services"]), data["control"],
                       kube.get("kubeconfig", ""), kube.get("context", ""))
        except (KeyError, TypeError, ValueError) as exc:
            raise LocalStackError(f"not a local stack description ({exc}): {data!r}") from None

    @classmethod
    def from_file(cls, path: Path) -> StackInfo:
        try:
            return cls.from_json(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as exc:
            raise LocalStackError(f"cannot read the local stack file {path}: {exc}") from None

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "gateway": self.gateway, "services": self.services, "control": self.control,
                "kubernetes": {"kubeconfig": self.kubeconfig, "context": self.kube_context}}


class LocalStack:
    """A `python -m stack` child process that exits with its parent."""

    def __init__(self, process: subprocess.Popen[bytes], info: StackInfo, workdir: Path, log: Path) -> None:
        self.process, self.info, self.workdir, self.log = process, info, workdir, log

    @classmethod
    def start(cls, cwd: Path, timeout: float = START_TIMEOUT_SECONDS) -> LocalStack:
        workdir = Path(tempfile.mkdtemp(prefix="polyshop-stack-"))
        ready, log = workdir / "stack.json", workdir / "stack.log"
        with open(log, "wb") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "stack", "--ready-file", str(ready), "--parent-pid", str(os.getpid())],
                cwd=cwd,
                stdout=subprocess.DEVNULL,
                stderr=log_file,
                stdin=subprocess.DEVNULL,
            )

        try:
            outcome = wait_ready(process, ready.exists, timeout=timeout, what="the local PolyShop stack to listen")
        except PollTimeout as exc:
            process.kill()
            raise LocalStackError(f"{exc}\n{cls._tail(log)}") from None
        if outcome == "exited":
            raise LocalStackError(f"the local PolyShop stack exited with code {process.returncode}:\n{cls._tail(log)}")
        return cls(process, StackInfo.from_file(ready), workdir, log)

    def stop(self, timeout: float = 10.0) -> None:
        stop_process(self.process, timeout)

    @staticmethod
    def _tail(log: Path, lines: int = 30) -> str:
        try:
            return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no stack log)"
