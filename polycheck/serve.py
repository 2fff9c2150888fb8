"""`python -m polycheck serve`: the run's verdict over HTTP, for Argo Rollouts' Web metric provider.

Argo's Job provider only knows success and failure, so an INCONCLUSIVE run (the checker could not
measure) would abort a healthy canary. Argo's Web provider reads a JSON value instead, and a value that
meets neither `successCondition` nor `failureCondition` is an Inconclusive measurement: Argo pauses the
Rollout for a human. `GET /analysis?canary-step=20` runs the checks once (one run at a time) and answers
200 `{"verdict": "GO" | "NO-GO" | "INCONCLUSIVE", "exit_code", "summary", "seconds", "args"}`;
`deploy/base/analysis-template-web.yaml` maps GO to success and NO-GO to failure.

Flagger's webhooks (pre-rollout, rollout, post-rollout) POST `{"name", "namespace", "phase", "checksum",
"metadata"}` and read only the status: 2xx passes, anything else fails. `POST /flagger` runs the checks once and
answers 200 on GO and 500 on NO-GO or INCONCLUSIVE, with the same JSON body; `metadata.canary-step` passes a
canary weight on (`deploy/flagger-canary.yaml`).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from polycheck.core import resolve

VERDICTS = {0: "GO", 1: "NO-GO", 6: "INCONCLUSIVE"}
DEFAULT_MARKER = "canary or (smoke and not browser)"
SUMMARY = re.compile(r"^polycheck: (GO|NO-GO|INCONCLUSIVE) .*$", re.MULTILINE)


def verdict_of(exit_code: int) -> str:
    """The run's verdict from its exit code; anything else (usage error, crash, time-out) says nothing: INCONCLUSIVE."""
    return VERDICTS.get(exit_code, "INCONCLUSIVE")


class Analysis:
    """Runs the checks as a subprocess, one run at a time, and turns the outcome into a verdict."""

    def __init__(self, root: Path, env: str, marker: str, extra: list[str], timeout: float) -> None:
        self.root, self.env, self.marker, self.extra, self.timeout = root, env, marker, extra, timeout
        self._lock = threading.Lock()

    def command(self, canary_step: str | None) -> list[str]:
        argv = [sys.executable, "-m", "pytest", "-m", self.marker, "--env", self.env, "--rollback", "off", "--purpose", "canary", "-q", "-p", "no:cacheprovider"]
        if canary_step:
            if not canary_step.isdigit():
                raise ValueError(f"canary-step must be a whole percentage, got {canary_step!r}")
            argv += ["--canary-step", canary_step]
        return argv + self.extra

    def run(self, canary_step: str | None) -> dict[str, Any]:
        argv = self.command(canary_step)
        with self._lock:
            started = time.monotonic()
            try:
                done = subprocess.run(argv, cwd=self.root, capture_output=True, text=True, timeout=self.timeout, check=False)
                code, output = done.returncode, done.stdout + done.stderr
            except subprocess.TimeoutExpired:
                code, output = -1, f"the checks did not finish within {self.timeout:g} s"
            seconds = time.monotonic() - started
        found = SUMMARY.findall(output)
        summary = next((m.group(0) for m in SUMMARY.finditer(output)), "") if found else output.strip().splitlines()[-1:] or [""]
        return {"verdict": verdict_of(code), "exit_code": code, "summary": summary if isinstance(summary, str) else summary[0],
                "seconds": round(seconds, 2), "args": argv[3:]}


def handler_for(analysis: Analysis) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            url = urlsplit(self.path)
            if url.path == "/healthz":
                return self._json(200, {"status": "ok"})
            if url.path != "/analysis":
                return self._json(404, {"error": "not_found", "paths": ["/analysis?canary-step=N", "/healthz"]})
            step = next(iter(parse_qs(url.query).get("canary-step", [])), None)
            try:
                body = analysis.run(step)
            except ValueError as exc:
                return self._json(400, {"error": "bad_request", "detail": str(exc)})
            self._json(200, body)

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            url = urlsplit(self.path)
            if url.path != "/flagger":
                return self._json(404, {"error": "not_found", "paths": ["POST /flagger"]})
            try:
                length = int(self.headers.get("Content-Length") or 0)
                hook = json.loads(self.rfile.read(length) or b"{}") if length else {}
                metadata = hook.get("metadata") or {} if isinstance(hook, dict) else {}
                step = metadata.get("canary-step") if isinstance(metadata, dict) else None
                body = analysis.run(str(step) if step not in (None, "") else None)
            except (ValueError, AttributeError) as exc:
                return self._json(400, {"error": "bad_request", "detail": str(exc)})
            body["flagger"] = {k: hook.get(k) for k in ("name", "namespace", "phase")} if isinstance(hook, dict) else {}
            self._json(200 if body["verdict"] == "GO" else 500, body)

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            sys.stderr.write(f"polycheck serve: {self.address_string()} {format % args}\n")

    return Handler


def parse(argv: list[str]) -> tuple[argparse.Namespace, Analysis]:
    """The command line, and the analysis it asks for. Raises ValueError for a malformed pytest ini file."""
    parser = argparse.ArgumentParser(prog="python -m polycheck serve", description=__doc__.splitlines()[0])
    parser.add_argument("--env", help="the environment the checks run against (envs/NAME.toml; default, as for the "
                        "plugin: ini polycheck_env, $POLYCHECK_ENV, else local)")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--root", default=".", help="the checkout holding conftest.py, suites/ and envs/")
    parser.add_argument("--marker", default=DEFAULT_MARKER, help=f"the checks of one analysis (-m; default {DEFAULT_MARKER!r})")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one analysis may take")
    parser.add_argument("--ready-file", help="write the URL here once listening (for tests)")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments, after --")
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    env = resolve.env_name(args.env, resolve.ini_file(root))  # the plugin's own rule, so both name one env
    return args, Analysis(root, env, args.marker, args.pytest_args, args.timeout)


def main(argv: list[str]) -> int:
    try:
        args, analysis = parse(argv)
    except ValueError as exc:
        print(f"polycheck serve: {exc}", file=sys.stderr)
        return 2
    server = ThreadingHTTPServer((args.host, args.port), handler_for(analysis))
    url = f"http://{args.host if args.host != '0.0.0.0' else '127.0.0.1'}:{server.server_port}"
    print(f"polycheck serve: {url}/analysis?canary-step=N runs -m {args.marker!r} --env {analysis.env}", flush=True)
    if args.ready_file:
        Path(args.ready_file).write_text(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
