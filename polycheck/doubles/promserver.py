"""A real Prometheus for the local stack and the self-tests: scrapes given targets, exits with its parent.

`LocalPrometheus.start({"order": "http://127.0.0.1:8101", ...})` writes a config with one job per target
(job = the name given, `honor_labels: true` so the services' own `service` label is kept as they export
it; no target label is added, so a query that works here also works against production's Prometheus),
keeps its TSDB in a temporary directory, listens on a free loopback port, and is ready when `/-/ready`
answers. Prometheus only scrapes a few seconds after it is ready (its discovery manager batches updates
for ~5 s), so a check waits for its first data with `wait_for_data` instead of sleeping.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from polycheck.core.polling import PollTimeout, poll
from polycheck.doubles.processes import answers_ready, stop_process, wait_ready
from polycheck.clients.prometheus import (
    Duration,
    NoDataError,
    PrometheusClient,
    PrometheusUnavailable,
    Sample,
    format_duration,
    format_labels,
    format_value,
)

START_TIMEOUT_SECONDS = 20.0
PORT_ATTEMPTS = 3
PR_SET_PDEATHSIG = 1


class LocalPrometheusError(RuntimeError):
    """The local Prometheus could not be started (the message carries the tail of its log)."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that makes the child receive SIGTERM when this process dies (Linux), or None elsewhere.

    libc's prctl is looked up here, before the fork, so the child does one foreign call and nothing else.
    PR_SET_PDEATHSIG fires when the *thread* that started the child exits: start from a long-lived thread
    (pytest's main thread, as fixtures do).
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    sigterm = int(signal.SIGTERM)

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, sigterm, 0, 0, 0)
        if os.getppid() != parent:  # the parent died between fork and prctl
            os._exit(1)

    return preexec


def _scrape_config(targets: Mapping[str, str], scrape_interval: str, rule_files: Sequence[str] = ()) -> dict:
    jobs = []
    for name, base_url in targets.items():
        if not name:
            raise ValueError("a target needs a non-empty name (it becomes the job label)")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or not parts.port:
            raise ValueError(f"target {name!r}: expected a base URL like http://127.0.0.1:PORT, got {base_url!r}")
        jobs.append({
            "job_name": name,
            "honor_labels": True,
            "scheme": parts.scheme,
            "metrics_path": parts.path.rstrip("/") + "/metrics",
            "static_configs": [{"targets": [f"{parts.hostname}:{parts.port}"]}],
        })
    config: dict = {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,
            "evaluation_interval": scrape_interval,
        },
        "scrape_configs": jobs,
    }
    if rule_files:
        config["rule_files"] = list(rule_files)
    return config


class LocalPrometheus:
    """A `prometheus` child process scraping the given targets; `.url` is its base URL."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, workdir: Path, log: Path, ready_seconds: float) -> None:
        self.process, self.url, self.workdir, self.log = process, url, workdir, log
        self.ready_seconds = ready_seconds

    @staticmethod
    def available(binary: str | None = None) -> str | None:
        """None when a prometheus binary can be run; else the reason, for a skip."""
        path = binary or shutil.which("prometheus")
        if not path:
            return "no prometheus binary on PATH (install it: apt-get install prometheus)"
        if not os.path.isfile(path) or not os.access(path, os.X_OK):
            return f"{path} is not an executable prometheus binary"
        return None

    @classmethod
    def start(
        cls,
        targets: Mapping[str, str],
        scrape_interval: Duration = "1s",
        binary: str | None = None,
        *,
        timeout: float = START_TIMEOUT_SECONDS,
        rule_files: Sequence[Path | str] = (),
        flags: Sequence[str] = (),
    ) -> LocalPrometheus:
        """Start Prometheus scraping each target's /metrics every `scrape_interval`; return once /-/ready answers.

        `targets` maps a job name (the service) to the service's base URL; `rule_files` are alerting/recording
        rule files evaluated every `scrape_interval`; `flags` are more command-line flags (e.g.
        `--query.lookback-delta=1h`). Raises LocalPrometheusError
        with the tail of Prometheus's log when it exits or is not ready within `timeout` seconds.
        """
        binary = binary or shutil.which("prometheus")
        reason = LocalPrometheus.available(binary)
        if reason:
            raise LocalPrometheusError(reason)
        interval = format_duration(scrape_interval)
        workdir = Path(tempfile.mkdtemp(prefix="polycheck-prometheus-"))
        config = workdir / "prometheus.yml"
        rules = [str(Path(r).resolve()) for r in rule_files]
        config.write_text(json.dumps(_scrape_config(targets, interval, rules), indent=2))  # JSON is YAML
        started = time.monotonic()
        for attempt in range(1, PORT_ATTEMPTS + 1):
            port = _free_port()
            log = workdir / f"prometheus-{attempt}.log"
            try:
                return cls._launch(binary, config, workdir, log, port, timeout, started, flags)  # type: ignore[arg-type]
            except LocalPrometheusError as exc:
                if "address already in use" not in str(exc) or attempt == PORT_ATTEMPTS:
                    shutil.rmtree(workdir, ignore_errors=True)
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def _launch(
        cls, binary: str, config: Path, workdir: Path, log: Path, port: int, timeout: float, started: float,
        flags: Sequence[str] = (),
    ) -> LocalPrometheus:
        url = f"http://127.0.0.1:{port}"
        command = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            "--storage.tsdb.retention.time=1d",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=info",
            *flags,
        ]
        with open(log, "wb") as log_file:
            process = subprocess.Popen(
                command, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent(),
            )
        instance = cls(process, url, workdir, log, 0.0)

        try:
            outcome = wait_ready(process, answers_ready(url), timeout=timeout, what=f"prometheus at {url} to be ready (/-/ready)")
        except PollTimeout as exc:
            tail = instance.log_tail()
            instance.stop(keep_files=True)
            raise LocalPrometheusError(f"{exc}\n--- prometheus log (tail) ---\n{tail}") from None
        if outcome == "exited":
            raise LocalPrometheusError(
                f"prometheus exited with code {process.returncode} before it was ready "
                f"({' '.join(command)})\n--- prometheus log (tail) ---\n{instance.log_tail()}"
            )
        instance.ready_seconds = time.monotonic() - started
        return instance

    def client(self, timeout_seconds: float = 5.0) -> PrometheusClient:
        """A client for this Prometheus (close it, or use it as a context manager)."""
        return PrometheusClient(self.url, timeout_seconds)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no prometheus log)"

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0, *, keep_files: bool = False) -> None:
        """Terminate Prometheus (kill it if it does not exit within `timeout`) and remove its files."""
        stop_process(self.process, timeout)
        if not keep_files:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalPrometheus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalPrometheus(url={self.url!r}, pid={self.process.pid}, running={self.running})"


def wait_for_data(
    client: PrometheusClient, promql: str, timeout: float, *, interval: float = 0.2
) -> list[Sample]:
    """Poll until `promql` returns at least one sample; return them.

    For a fresh Prometheus: the first scrape comes a few seconds after start, and rate() needs two. An
    unreachable Prometheus is retried until the deadline. Raises NoDataError naming the query, the wait
    and the last observation.
    """
    def describe(samples: list[Sample]) -> str:
        return ", ".join(f"{format_labels(s.labels)} {format_value(s.value)}" for s in samples) or "no series yet"

    try:
        return poll(
            lambda: client.query(promql, allow_empty=True), bool, timeout=timeout, interval=interval,
            max_interval=max(interval, 0.5), what=f"first data for {promql}", describe=describe,
            retry_on=(PrometheusUnavailable,),
        )
    except PollTimeout as exc:
        raise NoDataError(f"no data for {promql} from {client.base_url}: {exc}", promql) from None
