"""`python -m polycheck serve` answers Argo's Web provider with the run's verdict, and the Web-provider
AnalysisTemplate turns GO into success, NO-GO into failure and INCONCLUSIVE into neither (a paused Rollout)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from polycheck.core.polling import poll
from polycheck.serve import Analysis, read_token, verdict_of
from tests.support.serve import AUTH, TOKEN, serve, server  # noqa: F401 - server is a fixture
from tests.support.stack_control import StackControl
from tests.support.suite_runner import REPO

TEMPLATE = REPO / "deploy" / "base" / "analysis-template-web.yaml"


def argo_phase(template: dict[str, Any], answer: dict[str, Any]) -> str:
    """What Argo makes of one Web-provider measurement: the jsonPath's value against the two conditions."""
    (metric,) = template["spec"]["metrics"]
    path = re.fullmatch(r"\{\$\.(\w+)\}", metric["provider"]["web"]["jsonPath"])
    assert path, metric["provider"]["web"]["jsonPath"]
    result = answer[path.group(1)]

    def holds(condition: str) -> bool:
        match = re.fullmatch(r'result == "([^"]*)"', condition)
        assert match, f"condition {condition!r} is not of the form the test evaluates"
        return result == match.group(1)

    if holds(metric["successCondition"]):
        return "Successful"
    if holds(metric["failureCondition"]):
        return "Failed"
    return "Inconclusive"


def test_verdicts_follow_the_exit_codes() -> None:
    assert [verdict_of(code) for code in (0, 1, 6, 2, 4, 5, -1)] == ["GO", "NO-GO", "INCONCLUSIVE"] + ["INCONCLUSIVE"] * 4


def test_healthy_is_go_and_a_broken_service_is_no_go(server: str, stack: StackControl) -> None:
    template = yaml.safe_load(TEMPLATE.read_text())
    healthy = httpx.get(f"{server}/analysis", headers=AUTH, timeout=120).json()
    assert (healthy["verdict"], healthy["exit_code"]) == ("GO", 0), healthy
    assert argo_phase(template, healthy) == "Successful"
    stack.set_fault("order", "down")
    broken = httpx.get(f"{server}/analysis?canary-step=20", headers=AUTH, timeout=120).json()
    assert (broken["verdict"], broken["exit_code"]) == ("NO-GO", 1), broken
    assert "--canary-step" in broken["args"] and "20" in broken["args"] and "--rollback" in broken["args"] and "canary" == broken["args"][broken["args"].index("--purpose") + 1]
    assert argo_phase(template, broken) == "Failed"
    assert httpx.get(f"{server}/analysis?canary-step=x", headers=AUTH, timeout=10).status_code == 400


def test_a_run_that_cannot_measure_is_inconclusive_for_argo(tmp_path: Path) -> None:
    text = (REPO / "envs" / "prod.toml").read_text()
    for name in ("auth", "product", "inventory", "order", "payment", "notification", "search", "gateway"):
        text = text.replace(f"http://{name}-service.polyshop.svc.cluster.local:8080", "http://127.0.0.1:9")
    (tmp_path / "unreachable.toml").write_text(text)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc, url = serve(tmp_path, env, "--env", "unreachable", "--marker", "smoke", "--", f"--env-dir={tmp_path}",
                      f"--rollback-log={tmp_path / 'log'}", "suites/test_health.py")
    try:
        answer = httpx.get(f"{url}/analysis?canary-step=20", headers=AUTH, timeout=120).json()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert (answer["verdict"], answer["exit_code"]) == ("INCONCLUSIVE", 6), answer
    assert argo_phase(yaml.safe_load(TEMPLATE.read_text()), answer) == "Inconclusive"


# -- issue #17 item 5: serve is a service: a token, a body limit, read timeouts, one run at a time, a bounded pool ---
def _status(pid: int, key: str) -> int:
    """A number from /proc/PID/status (Threads, VmRSS in kB)."""
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith(f"{key}:"))
    return int(line.split()[1])


@pytest.fixture
def idle_server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A serve whose analysis is never run here (the limits are judged before any run): 2 workers, 2 queued, 1 s to send a request."""
    proc, url = serve(tmp_path, {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, "--env", "local", "--workers", "2",
                      "--queue", "2", "--read-timeout", "1", "--max-body", "1024")
    yield proc, url
    proc.terminate()
    proc.wait(timeout=10)


def test_every_path_but_healthz_needs_the_bearer_token(idle_server: tuple[subprocess.Popen[bytes], str]) -> None:
    _, url = idle_server
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200  # the kubelet's probes carry no token
    for headers in ({}, {"Authorization": f"Bearer {TOKEN[:-1]}"}, {"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer x"}):
        refused = httpx.get(f"{url}/analysis?canary-step=20", headers=headers, timeout=5)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer"), (headers, refused.text)
        assert "Authorization: Bearer TOKEN, or metadata.token in a Flagger webhook" in refused.json()["detail"]
        assert httpx.post(f"{url}/flagger", json={"metadata": {"canary-step": "20"}}, headers=headers, timeout=5).status_code == 401
    assert httpx.post(f"{url}/flagger", json={"metadata": {"token": TOKEN[:-1]}}, timeout=5).status_code == 401
    # with the token, a malformed step is refused before anything runs, saying what is valid
    for step in ("150", "0", "x", "%D9%A3"):  # the last is an Arabic-Indic 3, which str.isdigit() accepts
        wrong = httpx.get(f"{url}/analysis?canary-step={step}", headers=AUTH, timeout=5)
        assert wrong.status_code == 400 and "a whole percentage from 1 to 100" in wrong.json()["detail"], wrong.text


@pytest.mark.parametrize("token, expected", [
    (None, "no token: every run starts sandbox orders and payments, so serve needs a bearer token; set POLYCHECK_SERVE_TOKEN"),
    ("short-token", "the token of $POLYCHECK_SERVE_TOKEN is 11 characters; it needs at least 16"),
])
def test_serve_does_not_start_without_a_token(tmp_path: Path, token: str | None, expected: str) -> None:
    environ = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **({"POLYCHECK_SERVE_TOKEN": token} if token else {})}
    done = subprocess.run([sys.executable, "-m", "polycheck", "serve", "--port", "0", "--root", str(REPO)], cwd=REPO,
                          env=environ, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and expected in done.stderr, done.stderr


@pytest.mark.parametrize("args, expected", [
    (["--timeout", "inf"], "--timeout must be a number more than 0 and at most 86400, got 'inf'"),
    (["--read-timeout", "-1"], "--read-timeout must be a number more than 0 and at most 300, got '-1'"),
    (["--workers", "0"], "--workers must be a whole number from 1 to 64, got '0'"),
    (["--max-body", "1e9"], "--max-body must be a whole number from 1 to 16777216, got '1e9'"),
])
def test_serve_refuses_limits_out_of_range(tmp_path: Path, args: list[str], expected: str) -> None:
    done = subprocess.run([sys.executable, "-m", "polycheck", "serve", "--port", "0", "--root", str(REPO), *args], cwd=REPO,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "POLYCHECK_SERVE_TOKEN": TOKEN},
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and expected in done.stderr, done.stderr


def test_the_checks_never_see_the_serve_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        seen.update(kwargs)
        return subprocess.CompletedProcess(argv, 0, "polycheck: GO (1 passed)\n", "")

    monkeypatch.setenv("POLYCHECK_SERVE_TOKEN", TOKEN)
    monkeypatch.setattr(subprocess, "run", run)
    answer = Analysis(tmp_path, "local", "smoke", [], 60).run("20")
    assert (answer["verdict"], answer["summary"]) == ("GO", "polycheck: GO (1 passed)")
    assert "POLYCHECK_SERVE_TOKEN" not in seen["env"] and seen["env"]["PATH"] == os.environ["PATH"]
    assert answer["args"][answer["args"].index("--purpose") + 1] == "canary" and "--canary-step" in answer["args"]


def test_serve_reads_its_token_from_a_file(tmp_path: Path) -> None:
    assert read_token(str(_write(tmp_path / "token", f"{TOKEN}\n")), environ={}) == TOKEN
    with pytest.raises(ValueError, match=r"--token-file .*/missing: No such file"):
        read_token(str(tmp_path / "missing"), environ={})


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_body_over_the_limit_is_refused_unread(idle_server: tuple[subprocess.Popen[bytes], str]) -> None:
    proc, url = idle_server
    host, port = urlsplit(url).hostname, urlsplit(url).port
    before = _status(proc.pid, "VmRSS")
    with socket.create_connection((host, port), timeout=5) as sock:  # 300 MB announced, 8 MB sent
        sock.sendall(f"POST /flagger HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {300 * 2**20}\r\n\r\n".encode())
        try:
            for _ in range(8):
                sock.sendall(b"x" * 2**20)
        except OSError:
            pass  # serve answered and closed without reading
        answer = sock.recv(65536).decode()
    assert answer.startswith("HTTP/1.0 413") and "at most 1024 are read" in answer, answer
    assert _status(proc.pid, "VmRSS") - before < 4096, "serve's memory grew by more than 4 MB"
    chunked = httpx.post(f"{url}/flagger", content=iter([b"{}"]), headers=AUTH, timeout=5)  # no Content-Length
    assert chunked.status_code == 411, chunked.text
    small = httpx.post(f"{url}/nowhere", json={"metadata": {}}, headers=AUTH, timeout=5)
    assert small.status_code == 404  # a body within the limit is read and answered


def test_stalled_connections_hold_a_bounded_pool_and_are_dropped_after_the_read_timeout(
        idle_server: tuple[subprocess.Popen[bytes], str]) -> None:
    proc, url = idle_server
    host, port = urlsplit(url).hostname, urlsplit(url).port
    threads = _status(proc.pid, "Threads")
    stalled = []
    try:
        for i in range(300):  # connect, send half a request line, then nothing
            sock = socket.create_connection((host, port), timeout=5)
            sock.sendall(b"GET /anal" if i % 2 else b"")
            stalled.append(sock)
        time.sleep(0.3)
        assert _status(proc.pid, "Threads") == threads, "serve started threads for stalled connections"
        refused = sum(1 for sock in stalled if _answer(sock, 0.05).startswith("HTTP/1.0 429"))
        assert refused >= 300 - 2 - 2 - 64, refused  # beyond the 2 workers and 2 queued (and the listen backlog): 429 at once
        # every stalled connection is dropped within the read timeout of its acceptance: a real request is served again
        answer = poll(lambda: _try_healthz(url), lambda status: status == 200, timeout=10, what="/healthz answering again")
        assert answer == 200
    finally:
        for sock in stalled:
            sock.close()


def test_a_request_that_does_not_arrive_within_the_read_timeout_is_cut_off(idle_server: tuple[subprocess.Popen[bytes], str]) -> None:
    _, url = idle_server
    with socket.create_connection((urlsplit(url).hostname, urlsplit(url).port), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(f"POST /flagger HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 100\r\n\r\n{{".encode())
        answer = _answer(sock, 5)
        assert answer.startswith("HTTP/1.0 408") and time.monotonic() - started < 3, answer  # --read-timeout 1
    with socket.create_connection((urlsplit(url).hostname, urlsplit(url).port), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # headers never finished: the connection is closed
        assert _answer(sock, 5) == "" and time.monotonic() - started < 3


def test_headers_cut_off_by_the_end_of_input_get_no_answer(idle_server: tuple[subprocess.Popen[bytes], str]) -> None:
    """The end of a request's input is not the end of its headers: the reaper shuts a late request's reading down,
    and under load it did so before the worker read an unfinished GET /healthz, which was then answered 200. Here
    the client ends its input itself, the same end of input the worker saw."""
    _, url = idle_server
    with socket.create_connection((urlsplit(url).hostname, urlsplit(url).port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        sock.shutdown(socket.SHUT_WR)
        assert _answer(sock, 5) == ""
    with socket.create_connection((urlsplit(url).hostname, urlsplit(url).port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # finished, then the input ends: answered
        sock.shutdown(socket.SHUT_WR)
        assert _answer(sock, 5).startswith("HTTP/1.0 200"), "a whole request whose client stopped sending is served"


def _answer(sock: socket.socket, timeout: float) -> str:
    sock.settimeout(timeout)
    try:
        return sock.recv(200).decode(errors="replace")
    except OSError:
        return ""


def _try_healthz(url: str) -> int:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code
    except httpx.HTTPError:
        return 0


def test_a_second_analysis_is_answered_409_at_once_naming_the_run_in_progress(server: str) -> None:
    def ask(path: str) -> tuple[int, dict[str, Any], float]:
        started = time.monotonic()
        answer = httpx.get(f"{server}{path}", headers=AUTH, timeout=120)
        return answer.status_code, answer.json(), time.monotonic() - started

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(ask, "/analysis")
        time.sleep(0.5)
        second = pool.submit(ask, "/analysis?canary-step=20")
        answers = sorted([first.result(), second.result()], key=lambda a: a[0])
    (ran, body, _), (busy, refusal, seconds) = answers
    assert (ran, body["verdict"]) == (200, "GO"), body
    assert busy == 409 and seconds < 2, (busy, refusal, seconds)
    assert refusal["error"] == "busy" and "one run per environment at a time" in refusal["detail"]
    assert refusal["running"]["env"] == "local" and refusal["running"]["args"] == body["args"], refusal
    assert httpx.get(f"{server}/analysis?canary-step=20", headers=AUTH, timeout=120).json()["verdict"] == "GO"  # free again


def test_the_manifests_send_the_token_and_only_argo_and_flagger_reach_serve() -> None:
    template = yaml.safe_load(TEMPLATE.read_text())
    (arg,) = [a for a in template["spec"]["args"] if a["name"] == "serve-token"]
    secret = arg["valueFrom"]["secretKeyRef"]
    (metric,) = template["spec"]["metrics"]
    assert {"key": "Authorization", "value": "Bearer {{ args.serve-token }}"} in metric["provider"]["web"]["headers"]
    docs = [d for d in yaml.safe_load_all((REPO / "deploy" / "base" / "serve.yaml").read_text()) if d]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container.get("env", [])}
    assert env["POLYCHECK_SERVE_TOKEN"]["valueFrom"]["secretKeyRef"] == secret  # the one Secret both read
    base = yaml.safe_load((REPO / "deploy" / "base" / "kustomization.yaml").read_text())
    assert "networkpolicy.yaml" in base["resources"]
    policy = yaml.safe_load((REPO / "deploy" / "base" / "networkpolicy.yaml").read_text())
    assert policy["kind"] == "NetworkPolicy" and policy["spec"]["policyTypes"] == ["Ingress"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    cron = next(d for d in yaml.safe_load_all((REPO / "deploy" / "base" / "cronjob.yaml").read_text()) if d and d["kind"] == "CronJob")
    cron_labels = cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert not policy["spec"]["podSelector"]["matchLabels"].items() <= cron_labels.items()  # serve's pods, not the probes'
    (rule,) = policy["spec"]["ingress"]
    (source,) = rule["from"]
    assert "podSelector" not in source and "ipBlock" not in source
    (expression,) = source["namespaceSelector"]["matchExpressions"]
    assert (expression["key"], expression["operator"], sorted(expression["values"])) == (
        "kubernetes.io/metadata.name", "In", ["argo-rollouts", "flagger-system"])
    assert rule["ports"] == [{"protocol": "TCP", "port": "http"}]
