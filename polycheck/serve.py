"""`python -m polycheck serve`: the run's verdict over HTTP, for Argo Rollouts' Web metric provider and Flagger.

Argo's Job provider only knows success and failure, so an INCONCLUSIVE run (the checker could not
measure) would abort a healthy canary. Argo's Web provider reads a JSON value instead, and a value that
meets neither `successCondition` nor `failureCondition` is an Inconclusive measurement: Argo pauses the
Rollout for a human. `GET /analysis?canary-step=20` runs the checks once and answers
200 `{"verdict": "GO" | "NO-GO" | "INCONCLUSIVE", "exit_code", "summary", "seconds", "args"}`;
`deploy/base/analysis-template-web.yaml` maps GO to success and NO-GO to failure.

Flagger's webhooks (pre-rollout, rollout, post-rollout) POST `{"name", "namespace", "phase", "checksum",
"metadata"}` and read only the status: 2xx passes, anything else fails. `POST /flagger` runs the checks once and
answers 200 on GO and 500 on NO-GO or INCONCLUSIVE, with the same JSON body; `metadata.canary-step` passes a
canary weight on (`deploy/flagger-canary.yaml`).

A run starts sandbox orders and payments in the environment, so serve is a service with limits (issue #17):
- every path but `/healthz` needs the bearer token (`--token-file`, else `$POLYCHECK_SERVE_TOKEN`, from a Secret):
  `Authorization: Bearer TOKEN` (Argo's Web provider `headers`), or `metadata.token` in Flagger's webhook body;
  without one serve does not start;
- a request must arrive whole within `--read-timeout` seconds (line, headers and body), its body at most
  `--max-body` bytes (413 beyond, 411 without a Content-Length);
- `--workers` threads serve the connections, `--queue` more wait; past that a connection is answered 429 at once;
- one run at a time (serve checks one environment): a request while a run is in progress is answered 409 at once,
  naming that run, never queued behind it.
"""

from __future__ import annotations

import argparse
import hmac
import json
import math
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from polycheck.core import resolve
from polycheck.core.validate import parse_canary_step

VERDICTS = {0: "GO", 1: "NO-GO", 6: "INCONCLUSIVE"}
DEFAULT_MARKER = "canary or (smoke and not browser)"
SUMMARY = re.compile(r"^polycheck: (GO|NO-GO|INCONCLUSIVE) .*$", re.MULTILINE)
TOKEN_VARIABLE = "POLYCHECK_SERVE_TOKEN"
MIN_TOKEN_LENGTH = 16
RETRY_AFTER_SECONDS = 10


def verdict_of(exit_code: int) -> str:
    """The run's verdict from its exit code; anything else (usage error, crash, time-out) says nothing: INCONCLUSIVE."""
    return VERDICTS.get(exit_code, "INCONCLUSIVE")


class Busy(Exception):
    """A run of this environment is in progress; `running` describes it."""

    def __init__(self, running: dict[str, Any]) -> None:
        super().__init__(f"a run of env {running['env']} is in progress ({running['seconds']:.0f} s so far)")
        self.running = running


class Analysis:
    """Runs the checks as a subprocess, one run at a time (a second request is refused at once, never queued),
    and turns the outcome into a verdict."""

    def __init__(self, root: Path, env: str, marker: str, extra: list[str], timeout: float) -> None:
        self.root, self.env, self.marker, self.extra, self.timeout = root, env, marker, extra, timeout
        self._lock = threading.Lock()
        self._running: dict[str, Any] | None = None
        self._started = 0.0

    def command(self, canary_step: str | None) -> list[str]:
        argv = [sys.executable, "-m", "pytest", "-m", self.marker, "--env", self.env, "--rollback", "off", "--purpose", "canary", "-q", "-p", "no:cacheprovider"]
        if canary_step:
            argv += ["--canary-step", str(parse_canary_step(canary_step))]  # ValueError: a 400 saying what is valid
        return argv + self.extra

    def running(self) -> dict[str, Any] | None:
        """The run in progress, if any: its env, arguments, start and seconds so far."""
        current = self._running
        return None if current is None else {**current, "seconds": round(time.monotonic() - self._started, 1)}

    def run(self, canary_step: str | None, caller: str = "") -> dict[str, Any]:
        argv = self.command(canary_step)
        if not self._lock.acquire(blocking=False):
            raise Busy(self.running() or {"env": self.env, "seconds": 0.0})
        try:
            self._started = started = time.monotonic()
            self._running = {"env": self.env, "args": argv[3:], "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                             "requested_by": caller}
            child_env = {k: v for k, v in os.environ.items() if k != TOKEN_VARIABLE}  # the checks never see serve's token
            try:
                done = subprocess.run(argv, cwd=self.root, capture_output=True, text=True, timeout=self.timeout, check=False, env=child_env)
                code, output = done.returncode, done.stdout + done.stderr
            except subprocess.TimeoutExpired:
                code, output = -1, f"the checks did not finish within {self.timeout:g} s"
            seconds = time.monotonic() - started
        finally:
            self._running = None
            self._lock.release()
        found = SUMMARY.search(output)
        summary = found.group(0) if found else next(iter(output.strip().splitlines()[-1:]), "")
        return {"verdict": verdict_of(code), "exit_code": code, "summary": summary, "seconds": round(seconds, 2), "args": argv[3:]}


@dataclass(frozen=True)
class Limits:
    """What one connection may cost: its token, its body, the time it takes to arrive; how many are served at once."""

    token: str
    max_body: int = 64 * 1024
    read_timeout: float = 10.0
    workers: int = 4
    queue: int = 16


class BadRequest(Exception):
    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


class LastLine:
    """A request's input that remembers the last line it gave (b"" at the end of input)."""

    def __init__(self, raw: Any) -> None:
        self.raw, self.last = raw, b"\n"

    def readline(self, limit: int = -1) -> bytes:
        self.last = self.raw.readline(limit)
        return self.last

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


def handler_for(analysis: Analysis, limits: Limits) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server: BoundedServer
        timeout = limits.read_timeout  # each read of the socket; the server's reaper bounds the whole request

        def setup(self) -> None:
            super().setup()
            self.input = LastLine(self.rfile)
            self.rfile = self.input  # type: ignore[assignment]  # http.server reads it as a binary file

        def parse_request(self) -> bool:
            """http.server's parse, refusing headers that ended with the connection rather than a blank line: the
            reaper shuts a late request's reading down, and http.client takes that end of input for the end of the
            headers (seen under load: an unfinished GET /healthz answered 200). Such a request gets no answer, as
            one whose read timed out."""
            if not super().parse_request():
                return False
            if self.input.last == b"":
                self.close_connection = True
                return False
            return True

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            url = urlsplit(self.path)
            self.server.unwatch(self.request)  # the request is read: a GET's body is not
            if url.path == "/healthz":
                return self._json(200, {"status": "ok"})
            if url.path != "/analysis":
                return self._json(404, {"error": "not_found", "paths": ["/analysis?canary-step=N", "/healthz"]})
            if not self._authorised(None):
                return self._unauthorised()
            self._start(next(iter(parse_qs(url.query).get("canary-step", [])), None), None)

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            url = urlsplit(self.path)
            try:
                body = self._body()
            except BadRequest as exc:
                return self._json(exc.status, {"error": exc.error, "detail": exc.detail})
            finally:
                self.server.unwatch(self.request)
            if url.path != "/flagger":
                return self._json(404, {"error": "not_found", "paths": ["POST /flagger"]})
            invalid = "null"
            try:
                hook = json.loads(body or b"{}")
            except ValueError as exc:
                hook, invalid = None, str(exc)
            if not self._authorised(hook):
                return self._unauthorised()
            if not isinstance(hook, dict):
                return self._json(400, {"error": "bad_request", "detail": f"the body is not a JSON object: {invalid if hook is None else type(hook).__name__}"})
            metadata = hook.get("metadata")
            step = metadata.get("canary-step") if isinstance(metadata, dict) else None
            self._start(str(step) if step not in (None, "") else None, {k: hook.get(k) for k in ("name", "namespace", "phase")})

        def _start(self, step: str | None, flagger: dict[str, Any] | None) -> None:
            try:
                body = analysis.run(step, caller=self.address_string())
            except ValueError as exc:
                return self._json(400, {"error": "bad_request", "detail": str(exc)})
            except Busy as busy:
                return self._json(409, {"error": "busy", "detail": f"{busy}; one run per environment at a time: ask again when it ends",
                                        "running": busy.running}, retry_after=RETRY_AFTER_SECONDS)
            if flagger is None:
                return self._json(200, body)
            body["flagger"] = flagger
            self._json(200 if body["verdict"] == "GO" else 500, body)

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding"):
                raise BadRequest(411, "length_required", "send the body with a Content-Length (no chunked transfer)")
            length_header = self.headers.get("Content-Length")
            if length_header is None:
                return b""
            try:
                length = int(length_header)
                if length < 0:
                    raise ValueError
            except ValueError:
                raise BadRequest(400, "bad_request", f"Content-Length {length_header!r} is not a size") from None
            if length > limits.max_body:
                raise BadRequest(413, "body_too_large", f"the body is {length} bytes; at most {limits.max_body} are read")
            try:
                data = self.rfile.read(length)
            except OSError:  # the read timeout, or the reaper closed a request that did not arrive in time
                data = b""
            if len(data) < length:
                raise BadRequest(408, "request_timeout", f"{len(data)} of the body's {length} bytes arrived within the read "
                                 f"timeout ({limits.read_timeout:g} s)")
            return data

        def _authorised(self, hook: Any) -> bool:
            offered = ""
            header = self.headers.get("Authorization", "")
            if header[:7].lower() == "bearer ":
                offered = header[7:].strip()
            elif isinstance(hook, dict) and isinstance(hook.get("metadata"), dict):
                offered = str(hook["metadata"].get("token") or "")
            return bool(offered) and hmac.compare_digest(offered.encode(), limits.token.encode())

        def _unauthorised(self) -> None:
            self._json(401, {"error": "unauthorized", "detail": "send the serve token: Authorization: Bearer TOKEN, "
                             "or metadata.token in a Flagger webhook"}, extra={"WWW-Authenticate": 'Bearer realm="polycheck"'})

        def _json(self, status: int, body: dict[str, Any], retry_after: int | None = None, extra: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if retry_after is not None:
                self.send_header("Retry-After", str(retry_after))
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            try:
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client is gone (or was cut off for being too slow): nothing to tell it
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            sys.stderr.write(f"polycheck serve: {self.address_string()} {format % args}\n")

    return Handler


class BoundedServer(HTTPServer):
    """An HTTP server with a fixed pool of worker threads and a bounded queue of accepted connections: a connection
    beyond both is answered 429 at once and closed. A reaper closes every connection whose request has not
    arrived whole within the read timeout of its acceptance, so a stalled client holds a worker (or a place in
the queue) for at most that long."""

    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], limits: Limits) -> None:
        super().__init__(address, handler)
        self.limits = limits
        self._pending: queue.Queue[tuple[socket.socket, Any]] = queue.Queue(maxsize=limits.queue)
        self._deadlines: dict[socket.socket, float] = {}
        self._guard = threading.Lock()
        self._closing = threading.Event()
        self._threads = [threading.Thread(target=self._work, name=f"polycheck-serve-{i}", daemon=True) for i in range(limits.workers)]
        self._threads.append(threading.Thread(target=self._reap, name="polycheck-serve-reaper", daemon=True))
        for thread in self._threads:
            thread.start()

    def process_request(self, request: Any, client_address: Any) -> None:
        self.watch(request, self.limits.read_timeout)  # from its acceptance: waiting for a worker counts too
        try:
            self._pending.put_nowait((request, client_address))
        except queue.Full:
            self.unwatch(request)
            self._refuse(request)

    def _refuse(self, request: socket.socket) -> None:
        body = json.dumps({"error": "too_many_requests", "detail": f"{self.limits.workers} connections are being served and "
                           f"{self.limits.queue} wait; ask again later"}).encode()
        head = (f"HTTP/1.0 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                f"Retry-After: {RETRY_AFTER_SECONDS}\r\nConnection: close\r\n\r\n").encode()
        try:
            request.settimeout(0.2)
            request.sendall(head + body)
        except OSError:
            pass
        self.shutdown_request(request)

    def _work(self) -> None:
        while not self._closing.is_set():
            try:
                request, address = self._pending.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self.finish_request(request, address)
            except Exception:  # noqa: BLE001 - one connection's error never ends the worker
                self.handle_error(request, address)
            finally:
                self.unwatch(request)
                self.shutdown_request(request)

    def watch(self, request: socket.socket, seconds: float) -> None:
        with self._guard:
            self._deadlines[request] = time.monotonic() + seconds

    def unwatch(self, request: socket.socket) -> None:
        with self._guard:
            self._deadlines.pop(request, None)

    def _reap(self) -> None:
        while not self._closing.wait(0.2):
            now = time.monotonic()
            with self._guard:
                late = [request for request, deadline in self._deadlines.items() if deadline <= now]
                for request in late:
                    del self._deadlines[request]
            for request in late:
                try:
                    request.shutdown(socket.SHUT_RD)  # the worker's read ends (it may still answer 408); it closes the connection
                except OSError:
                    pass

    def server_close(self) -> None:
        self._closing.set()
        super().server_close()


def _positive(kind: str, top: float) -> Any:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and 0 < value <= top):
            raise argparse.ArgumentTypeError(f"{kind} must be a number more than 0 and at most {top:g}, got {text!r}")
        return value
    return parse


def _count(kind: str, top: int) -> Any:
    def parse(text: str) -> int:
        if not text.strip().isdecimal() or not 1 <= int(text) <= top:
            raise argparse.ArgumentTypeError(f"{kind} must be a whole number from 1 to {top}, got {text!r}")
        return int(text)
    return parse


def read_token(path: str | None, environ: Any = os.environ) -> str:
    """The bearer token from `--token-file` (a mounted Secret), else `$POLYCHECK_SERVE_TOKEN`; ValueError saying what to set."""
    if path:
        try:
            token = Path(path).read_text().strip()
        except OSError as exc:
            raise ValueError(f"--token-file {path}: {exc.strerror or exc}") from None
        where = f"--token-file {path}"
    else:
        token, where = (environ.get(TOKEN_VARIABLE) or "").strip(), f"${TOKEN_VARIABLE}"
    if not token:
        raise ValueError(f"no token: every run starts sandbox orders and payments, so serve needs a bearer token; set "
                         f"{TOKEN_VARIABLE} or pass --token-file (a Secret's key, e.g. from `openssl rand -hex 32`)")
    if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
        raise ValueError(f"the token of {where} is {len(token)} characters; it needs at least {MIN_TOKEN_LENGTH} and no "
                         f"whitespace (e.g. `openssl rand -hex 32`)")
    return token


def parse(argv: list[str]) -> tuple[argparse.Namespace, Analysis, Limits]:
    """The command line, the analysis and the limits it asks for. Raises ValueError for a malformed pytest ini file
    or a missing or short token; argparse exits 2 for a malformed number."""
    parser = argparse.ArgumentParser(prog="python -m polycheck serve", description=__doc__.splitlines()[0])
    parser.add_argument("--env", help="the environment the checks run against (envs/NAME.toml; default, as for the "
                        "plugin: ini polycheck_env, $POLYCHECK_ENV, else local)")
    parser.add_argument("--host", default="0.0.0.0", help="the address to listen on (default 0.0.0.0: the pod's; 127.0.0.1 outside one)")
    parser.add_argument("--port", type=int, default=8080, help="the port to listen on (default 8080)")
    parser.add_argument("--root", default=".", help="the checkout holding conftest.py, suites/ and envs/")
    parser.add_argument("--marker", default=DEFAULT_MARKER, help=f"the checks of one analysis (-m; default {DEFAULT_MARKER!r})")
    parser.add_argument("--timeout", type=_positive("--timeout", 86400), default=600.0, help="seconds one analysis may take")
    parser.add_argument("--token-file", help=f"the file holding the bearer token every request but /healthz needs "
                        f"(default: ${TOKEN_VARIABLE})")
    parser.add_argument("--max-body", type=_count("--max-body", 16 * 1024 * 1024), default=64 * 1024,
                        help="the largest request body read, in bytes (default 65536)")
    parser.add_argument("--read-timeout", type=_positive("--read-timeout", 300), default=10.0,
                        help="seconds a request may take to arrive whole (default 10)")
    parser.add_argument("--workers", type=_count("--workers", 64), default=4, help="connections served at once (default 4)")
    parser.add_argument("--queue", type=_count("--queue", 1024), default=16, help="connections waiting for a worker (default 16)")
    parser.add_argument("--ready-file", help="write the URL here once listening (for tests)")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments, after --")
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    env = resolve.env_name(args.env, resolve.ini_file(root))  # the plugin's own rule, so both name one env
    limits = Limits(read_token(args.token_file), args.max_body, args.read_timeout, args.workers, args.queue)
    return args, Analysis(root, env, args.marker, args.pytest_args, args.timeout), limits


def main(argv: list[str]) -> int:
    try:
        args, analysis, limits = parse(argv)
    except ValueError as exc:
        print(f"polycheck serve: {exc}", file=sys.stderr)
        return 2
    server = BoundedServer((args.host, args.port), handler_for(analysis, limits), limits)
    url = f"http://{args.host if args.host != '0.0.0.0' else '127.0.0.1'}:{server.server_port}"
    print(f"polycheck serve: {url}/analysis?canary-step=N runs -m {args.marker!r} --env {analysis.env} (bearer token required; "
          f"{limits.workers} workers, {limits.queue} queued, bodies up to {limits.max_body} bytes, {limits.read_timeout:g} s to "
          f"send a request)", flush=True)
    if args.ready_file:
        Path(args.ready_file).write_text(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
