"""LocalPrometheus: the config it writes, how it fails to start, how it stops, and that it dies with its parent."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from polycheck.core.polling import poll
from polycheck.doubles.promserver import LocalPrometheus, LocalPrometheusError, _scrape_config

needs_prometheus = pytest.mark.skipif(LocalPrometheus.available() is not None,
                                      reason=f"real Prometheus needed: {LocalPrometheus.available()}")


def fake_binary(tmp_path: Path, script: str) -> str:
    path = tmp_path / "prometheus"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return str(path)


def gone(pid: int) -> bool:
    """The process has exited (a zombie nobody reaps counts as exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return True


def test_available_says_why_not(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert LocalPrometheus.available() == "no prometheus binary on PATH (install it: apt-get install prometheus)"
    (tmp_path / "prometheus").write_text("not executable")
    assert LocalPrometheus.available(str(tmp_path / "prometheus")) == (
        f"{tmp_path / 'prometheus'} is not an executable prometheus binary")
    with pytest.raises(LocalPrometheusError, match="no prometheus binary on PATH"):
        LocalPrometheus.start({"order": "http://127.0.0.1:8000"})


def test_config_has_one_job_per_service_honouring_their_labels() -> None:
    config = _scrape_config({"order": "http://127.0.0.1:8101", "search": "http://127.0.0.1:8102/prefix/"}, "1s")
    assert config["global"] == {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
    assert config["scrape_configs"] == [
        {"job_name": "order", "honor_labels": True, "scheme": "http", "metrics_path": "/metrics",
         "static_configs": [{"targets": ["127.0.0.1:8101"]}]},
        {"job_name": "search", "honor_labels": True, "scheme": "http", "metrics_path": "/prefix/metrics",
         "static_configs": [{"targets": ["127.0.0.1:8102"]}]},
    ]
    with pytest.raises(ValueError, match="expected a base URL like http://127.0.0.1:PORT"):
        _scrape_config({"order": "127.0.0.1:8101"}, "1s")


def test_a_prometheus_that_exits_at_start_is_an_error_with_its_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = fake_binary(tmp_path, 'echo "level=error msg=\\"Error loading config\\" err=boom" >&2\nexit 3\n')
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    with pytest.raises(LocalPrometheusError) as caught:
        LocalPrometheus.start({"order": "http://127.0.0.1:8101"}, binary=binary, timeout=5)
    assert "prometheus exited with code 3 before it was ready" in str(caught.value)
    assert "--- prometheus log (tail) ---\nlevel=error msg=\"Error loading config\" err=boom" in str(caught.value)
    assert list((tmp_path / "tmp").iterdir()) == [], "a failed start leaves no files behind"


def test_a_port_taken_meanwhile_is_retried_on_another_port(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    binary = fake_binary(tmp_path, f'echo "$@" >> {calls}\n'
                                   'echo "err=\\"listen tcp 127.0.0.1:1: bind: address already in use\\"" >&2\nexit 1\n')
    with pytest.raises(LocalPrometheusError, match="address already in use"):
        LocalPrometheus.start({"order": "http://127.0.0.1:8101"}, binary=binary, timeout=5)
    ports = [line.split("--web.listen-address=")[1].split()[0] for line in calls.read_text().splitlines()]
    assert len(ports) == 3 and all(port.startswith("127.0.0.1:") for port in ports)


def test_a_prometheus_that_never_gets_ready_is_stopped_at_the_deadline(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    binary = fake_binary(tmp_path, f'echo $$ > {pid_file}\necho "starting up, slowly"\nexec sleep 30\n')
    started = time.monotonic()
    with pytest.raises(LocalPrometheusError, match=r"to be ready \(/-/ready\): not reached within 0.5 s(.|\n)*"
                                                   r"starting up, slowly"):
        LocalPrometheus.start({"order": "http://127.0.0.1:8101"}, binary=binary, timeout=0.5)
    assert time.monotonic() - started < 3
    assert gone(int(pid_file.read_text()))


@needs_prometheus
def test_stop_ends_prometheus_and_removes_its_files() -> None:
    prometheus = LocalPrometheus.start({"order": "http://127.0.0.1:9"})
    config = json.loads((prometheus.workdir / "prometheus.yml").read_text())
    assert config["scrape_configs"][0]["job_name"] == "order"
    assert prometheus.running and prometheus.url.startswith("http://127.0.0.1:")
    prometheus.stop()
    assert not prometheus.running and not prometheus.workdir.exists()
    prometheus.stop()  # idempotent


@needs_prometheus
def test_prometheus_exits_with_its_parent(tmp_path: Path) -> None:
    """A parent killed with SIGKILL runs no cleanup; PR_SET_PDEATHSIG still ends its Prometheus."""
    script = textwrap.dedent("""
        import sys
        from polycheck.doubles.promserver import LocalPrometheus
        prometheus = LocalPrometheus.start({"order": "http://127.0.0.1:9"})
        print(prometheus.process.pid, prometheus.workdir, flush=True)
        sys.stdin.read()
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    pid = None
    try:
        line = parent.stdout.readline()  # type: ignore[union-attr]
        assert line, f"the parent process did not start Prometheus: {parent.stderr.read()}"  # type: ignore[union-attr]
        pid_text, workdir = line.split(maxsplit=1)
        pid = int(pid_text)
        assert not gone(pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait(5)
        poll(lambda: gone(pid), bool, timeout=5, what=f"prometheus (pid {pid}) to exit after its parent was killed")
    finally:
        if pid is not None and not gone(pid):
            os.kill(pid, signal.SIGKILL)
        if parent.poll() is None:
            parent.kill()
            parent.wait(5)
        for stream in (parent.stdin, parent.stdout, parent.stderr):
            stream.close()  # type: ignore[union-attr]
    shutil.rmtree(workdir.strip(), ignore_errors=True)
