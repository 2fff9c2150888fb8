"""A real Prometheus Pushgateway for the self-tests and local trials: a child process on a free loopback port.

`LocalPushgateway.start()` runs Debian's `prometheus-pushgateway` (or `pushgateway`) in memory only, and is
ready when `/-/ready` answers. Pair it with `LocalPrometheus.start({"pushgateway": gw.url})`, which scrapes with
`honor_labels: true` as a Pushgateway needs (the pushed `job` and grouping labels are kept).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from polycheck.core.polling import PollTimeout
from polycheck.doubles.processes import answers_ready, stop_process, wait_ready
from polycheck.doubles.promserver import _die_with_parent, _free_port

BINARIES = ("prometheus-pushgateway", "pushgateway")
START_TIMEOUT_SECONDS = 20.0


class LocalPushgatewayError(RuntimeError):
    """The Pushgateway could not be started (the message carries its log)."""


class LocalPushgateway:
    """A Pushgateway child process; `.url` is its base URL."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, workdir: Path) -> None:
        self.process, self.url, self.workdir = process, url, workdir

    @staticmethod
    def binary() -> str | None:
        return next((path for path in map(shutil.which, BINARIES) if path), None)

    @staticmethod
    def available() -> str | None:
        """None when a Pushgateway can be run; else the reason, for a skip."""
        if LocalPushgateway.binary() is None:
            return "no prometheus-pushgateway binary on PATH (install it: apt-get install prometheus-pushgateway)"
        return None

    @classmethod
    def start(cls, timeout: float = START_TIMEOUT_SECONDS) -> LocalPushgateway:
        binary = cls.binary()
        if binary is None:
            raise LocalPushgatewayError(str(cls.available()))
        workdir = Path(tempfile.mkdtemp(prefix="polycheck-pushgateway-"))
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        log = workdir / "pushgateway.log"
        with open(log, "wb") as out:
            # Debian's build persists to /var/lib/prometheus/pushgateway.data by default: shared by every instance
            process = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file=",
                                        "--log.level=info"],
                                       cwd=workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                       preexec_fn=_die_with_parent())
        gateway = cls(process, url, workdir)

        try:
            outcome = wait_ready(process, answers_ready(url), timeout=timeout, what=f"pushgateway at {url} to be ready (/-/ready)")
        except PollTimeout as exc:
            gateway.stop()
            raise LocalPushgatewayError(f"{exc}\n{log.read_text(errors='replace')[-2000:]}") from None
        if outcome == "exited":
            text = log.read_text(errors="replace")[-2000:]
            gateway.stop()
            raise LocalPushgatewayError(f"{binary} exited with code {process.returncode} before it was ready:\n{text}")
        return gateway

    def stop(self, timeout: float = 10.0) -> None:
        stop_process(self.process, timeout)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalPushgateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
