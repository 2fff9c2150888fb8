"""HTTP for checks: one client per service, every exchange recorded, failures that explain themselves."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Collection
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from typing import Any, NoReturn

import httpx

from polycheck.core.attribution import GATEWAY, UPSTREAM_FAILURES, Routes, ServiceBoard
from polycheck.core.failures import check_failed
from polycheck.core.redact import redact_data, redact_headers, redact_text
from polycheck.clients.capped import DEFAULT_LIMITS, BodyLimits, BodyTooLarge, send_capped
from polycheck.clients.lending import ONE_CONNECTION, ClientLender
from polycheck.clients.tracing import CheckTrace

BODY_PREVIEW = 400
SYNTHETIC_HEADERS = {"X-Synthetic": "true", "User-Agent": "polycheck"}


@dataclass(frozen=True)
class Sent:
    """A request as the check sent it (secrets included: kept in memory only, never shown), to replay it directly."""

    path: str
    json_body: Any = None
    params: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Exchange:
    """One request of a check and what came back (or why nothing did)."""

    service: str
    method: str
    url: str
    request_headers: dict[str, str]
    request_body: str | None
    request_id: str
    trace_id: str
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str = ""
    elapsed: float = 0.0
    sent_at: float = 0.0  # epoch seconds when it was sent (also for one sent early, in the run's fan-out)
    error: str | None = None
    answered_by: str = ""  # the service the request reached (the routed one, through the gateway)
    timed_out: bool = False
    sent: Sent | None = field(default=None, repr=False, compare=False)  # what was sent, to send it again elsewhere

    @property
    def line(self) -> str:
        via = f" (gateway -> {self.answered_by})" if self.service == GATEWAY and self.answered_by != GATEWAY else ""
        return f"[{self.service}]{via} {self.method} {self.url}"

    @property
    def ids(self) -> str:
        return f"trace-id {self.trace_id}, request-id {self.request_id}"

    def preview(self) -> str:
        body = redact_text(self.response_body)
        return body if len(body) <= BODY_PREVIEW else body[:BODY_PREVIEW] + f"... ({len(body)} chars)"

    def as_text(self) -> str:
        """The exchange, secrets redacted, for a report attachment."""
        lines = [f"{self.method} {self.url}"]
        lines += [f"{k}: {v}" for k, v in redact_headers(self.request_headers).items()]
        if self.request_body:
            lines += ["", redact_text(self.request_body)]
        lines += ["", f"--> {self.error}" if self.error else f"--> HTTP {self.status} in {self.elapsed:.3f} s"]
        lines += [f"{k}: {v}" for k, v in redact_headers(self.response_headers).items()]
        if self.response_body:
            lines += ["", redact_text(self.response_body)]
        return "\n".join(lines)


@dataclass
class ExchangeLog:
    """The exchanges of one check, attached to its report when it fails."""

    exchanges: list[Exchange] = field(default_factory=list)

    def add(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)


def _describe_error(exc: httpx.HTTPError, timeout: httpx.Timeout) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return f"no connection within the connect timeout of {timeout.connect:g} s"
    if isinstance(exc, httpx.ReadTimeout):
        return f"no answer within the read timeout of {timeout.read:g} s"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    if isinstance(exc, httpx.ConnectError):
        return f"connection failed ({exc or 'refused'})"
    return f"{type(exc).__name__}: {exc}"


_TLS: ssl.SSLContext | None = None
_TLS_LOCK = threading.Lock()


def shared_tls() -> ssl.SSLContext:
    """One TLS context for every client of the process: httpx builds a new one per client (loading the CA bundle,
    ~16 ms of CPU each), and a run makes dozens of clients. Verified as httpx's own default does it (SSL_CERT_FILE
    or SSL_CERT_DIR when set, else certifi's bundle)."""
    global _TLS
    with _TLS_LOCK:
        if _TLS is None:
            _TLS = httpx.create_ssl_context()
        return _TLS


# An idle connection is dropped after this long, before a server closes it (uvicorn's default keep-alive timeout
# is 5 s, gunicorn's 2 s): a client that reuses a connection the server is closing at that moment gets
# "Server disconnected without sending a response" for a request the service never saw.
KEEPALIVE_EXPIRY_SECONDS = 1.5


class Connections:
    """The run's keep-alive connections per base URL, shared by every check (one TLS context), each used by one
    request at a time (polycheck.clients.lending: httpcore's shared pool can close one under a request)."""

    def __init__(self) -> None:
        self._lenders: dict[tuple[str, str], ClientLender] = {}
        self._lock = threading.Lock()
        self.prefetched: dict[tuple[str, str, str], tuple[httpx.Response | None, Exchange]] = {}
        self._pending: dict[str, list[Future[None]]] = {}  # trace id -> its fan-out requests still on their way

    def lender(self, base_url: str, timeout: httpx.Timeout) -> ClientLender:
        key = (base_url, repr(timeout))
        with self._lock:
            if key not in self._lenders:
                self._lenders[key] = lender_for(base_url, timeout)
            return self._lenders[key]

    def take(self, trace_id: str, method: str, url: str) -> tuple[httpx.Response | None, Exchange] | None:
        """The answer to a request this check's trace made in the run's fan-out, once (waiting for it if it is
        still on its way)."""
        with self._lock:
            pending = list(self._pending.get(trace_id, ()))
        if pending:
            wait(pending)
        with self._lock:
            return self.prefetched.pop((trace_id, method, url), None)

    def expect(self, trace_id: str, sent: Future[None]) -> None:
        """A fan-out request of this trace is on its way: `take` waits for it."""
        with self._lock:
            self._pending.setdefault(trace_id, []).append(sent)

    def keep(self, exchange: Exchange, response: httpx.Response | None) -> None:
        with self._lock:
            self.prefetched[(exchange.trace_id, exchange.method, exchange.url)] = (response, exchange)

    def untaken(self) -> list[Exchange]:
        """The fan-out's answers that came back and no check asked for."""
        with self._lock:
            return [exchange for _, exchange in self.prefetched.values()]

    def close(self) -> None:
        with self._lock:
            lenders, self._lenders = list(self._lenders.values()), {}
        for lender in lenders:
            lender.close()


def lender_for(base_url: str, timeout: httpx.Timeout, transport: httpx.BaseTransport | None = None) -> ClientLender:
    """The lender of a base URL's clients: synthetic headers, the shared TLS context, one keep-alive connection
    each, dropped after KEEPALIVE_EXPIRY_SECONDS idle (`transport` replaces the network, for tests)."""
    return ClientLender(lambda: httpx.Client(
        base_url=base_url, timeout=timeout, headers=SYNTHETIC_HEADERS, verify=shared_tls(), transport=transport,
        limits=httpx.Limits(**ONE_CONNECTION, keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS)))


class ServiceClient:
    """Requests to one service's base URL, tagged synthetic and traced, recorded in an ExchangeLog."""

    def __init__(
        self,
        service: str,
        base_url: str,
        *,
        timeout: httpx.Timeout,
        trace: CheckTrace,
        log: ExchangeLog,
        headers: dict[str, str] | None = None,
        routes: Routes | None = None,
        direct_urls: dict[str, str] | None = None,
        board: ServiceBoard | None = None,
        connections: Connections | None = None,
        limits: BodyLimits = DEFAULT_LIMITS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not base_url:
            raise ValueError(f"no URL configured for service {service!r}")
        self.service = service
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.trace = trace
        self.log = log
        self.routes = routes  # set for the gateway: which service each path reaches
        self.direct_urls = direct_urls or {}  # the services' own URLs, to tell a gateway fault from a service's
        self.board = board or ServiceBoard()
        self.connections = connections
        self.limits = limits  # the caps of the bodies it reads (polycheck.clients.capped)
        self.headers = dict(headers or {})
        self._own: ClientLender | None = None
        if connections is not None and transport is None:
            self._lender = connections.lender(self.base_url, timeout)
        else:
            self._own = self._lender = lender_for(self.base_url, timeout, transport)

    def close(self) -> None:
        if self._own is not None:
            self._own.close()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        expect: int | Collection[int] | None = None,
        within: float | None = None,
        budget_name: str = "latency budget",
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request; fail the check when it errors, answers another status than `expect`, or is slower than `within`."""
        __tracebackhide__ = True
        # out until judged: a bad answer's blame asks more (the routed service directly, auth), and a group wait
        # waiting for the requests out at a failure waits for that judgment too
        with self.board.in_flight.sent():
            response, exchange = self.send(method, path, json_body=json_body, params=params, headers=headers)
            if response is None:
                self.fail_unanswered(exchange)
            if expect is not None:
                allowed = {expect} if isinstance(expect, int) else set(expect)
                if response.status_code not in allowed:
                    wanted = " or ".join(str(s) for s in sorted(allowed))
                    culprit, why = self.blame_answer(exchange, allowed)
                    check_failed(
                        f"{exchange.line}: expected HTTP {wanted}, got {response.status_code}: {exchange.preview()}{why}\n"
                        f"  ({exchange.ids})",
                        culprit=culprit,
                    )
            if within is not None and exchange.elapsed > within:
                check_failed(
                    f"{exchange.line}: answered in {exchange.elapsed:.2f} s, over the {within:g} s {budget_name}\n"
                    f"  ({exchange.ids})",
                    culprit=exchange.answered_by,
                )
            return response

    def fail_unanswered(self, exchange: Exchange) -> NoReturn:
        """Fail the check for a request that got no answer, blaming who did not answer."""
        __tracebackhide__ = True
        check_failed(f"{exchange.line}: {exchange.error}\n  ({exchange.ids})", culprit=self.blame_unanswered(exchange))

    def blame_unanswered(self, exchange: Exchange) -> str:
        """No answer: the gateway when it could not be connected to; else the service the request reached."""
        if self.board.hanging(self.service) is not None:
            return self.service  # the gateway itself hangs
        if self.service == GATEWAY and not exchange.timed_out:
            return GATEWAY  # no connection to the gateway itself
        return exchange.answered_by

    def blame_answer(self, exchange: Exchange, allowed: Collection[int]) -> tuple[str, str]:
        """(culprit, evidence) for an answer off the contract: the service that answered it, unless the evidence
        excludes it. A 401 for a token auth's own /me refuses too is auth's. Through the gateway, the gateway is
        blamed only for what the routed service, sent the same request directly (method, path, query, body and
        headers), does not reproduce, and only when the gateway, asked again, repeats its answer. A 500/503, a
        502/504 the direct request reproduces or answers no faster than the gateway gave up (a slow upstream), and a
        write the gateway did not refuse (no 4xx: it may have been applied) stay the routed service's."""
        routed = exchange.answered_by
        refused = self._token_refused_by_auth(exchange)
        if refused:
            return "auth", refused
        status = exchange.status or 0
        sent = exchange.sent
        if self.service != GATEWAY or routed == GATEWAY or routed not in self.direct_urls or sent is None:
            return routed, ""
        if status in (500, 503) or (exchange.method != "GET" and not 400 <= status < 500):
            return routed, ""
        with ServiceClient(routed, self.direct_urls[routed], timeout=self.timeout, trace=self.trace, log=self.log,
                           board=self.board, connections=self.connections, limits=self.limits) as direct:
            answer, seen = direct.send(exchange.method, sent.path, json_body=sent.json_body, params=sent.params,
                                       headers=sent.headers, fresh=True)
        said = seen.error if answer is None else f"HTTP {answer.status_code}"
        if answer is None or answer.status_code not in allowed:
            return routed, f"\n  {routed} itself, asked directly, answers {said} too"
        upstream = status in UPSTREAM_FAILURES
        if upstream and seen.elapsed >= exchange.elapsed:
            return routed, (f"\n  {routed} asked directly answered {said} only after {seen.elapsed:.2f} s ({seen.ids}); the "
                            f"gateway gave up after {exchange.elapsed:.2f} s: a slow upstream, not the gateway")
        again, retried = self.send(exchange.method, sent.path, json_body=sent.json_body, params=sent.params,
                                   headers=sent.headers, fresh=True)
        if again is None or again.status_code in allowed:
            return routed, (f"\n  {routed} asked directly answered {said}, and the gateway answered "
                            f"{retried.error or f'HTTP {again.status_code if again is not None else None}'} on a retry ({retried.ids}): intermittent")
        if upstream:
            return GATEWAY, (f"\n  yet {routed} itself answers the same request ({seen.line} answered {said} in {seen.elapsed:.2f} s, "
                             f"{seen.ids}) and the gateway answered HTTP {again.status_code} again ({retried.ids}): the gateway cannot reach it")
        return GATEWAY, (f"\n  the same request straight to {routed} answered {said} ({seen.ids}), through the gateway "
                         f"HTTP {again.status_code} again ({retried.ids}): the gateway does not pass {sent.path} to {routed} as it should")

    def _token_refused_by_auth(self, exchange: Exchange) -> str:
        """A service other than auth refused a Bearer token (401): the evidence that auth's own /me refuses it too
        (auth issues tokens that do not work), else "" (a token auth accepts is the refusing service's)."""
        credential = (exchange.sent.headers if exchange.sent else {}).get("Authorization", "")
        if exchange.status != 401 or not credential.startswith("Bearer ") or exchange.answered_by == "auth":
            return ""
        me = {"Authorization": credential}
        if "auth" in self.direct_urls:
            with ServiceClient("auth", self.direct_urls["auth"], timeout=self.timeout, trace=self.trace, log=self.log,
                               board=self.board, connections=self.connections, limits=self.limits) as auth:
                answer, seen = auth.send("GET", "/api/auth/me", headers=me, fresh=True)
        elif self.service == "auth" or (self.routes is not None and self.routes.service_for("/api/auth/me") == "auth"):
            answer, seen = self.send("GET", "/api/auth/me", headers=me, fresh=True)
        else:
            return ""
        if answer is None or answer.status_code != 401:
            return ""
        return (f"\n  the token auth issued is refused by auth's own /api/auth/me too ({seen.ids}): "
                "auth issues tokens that do not work")

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        __tracebackhide__ = True
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        __tracebackhide__ = True
        return self.request("POST", path, **kwargs)

    def send(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        fresh: bool = False,
    ) -> tuple[httpx.Response | None, Exchange]:
        """Send one request and record it; never fails the check (for callers that judge the answer themselves).
        A GET this check's trace already sent in the run's fan-out is answered from there, unless `fresh`."""
        if self.connections is not None and method == "GET" and json_body is None and not fresh:
            url = str(self._lender.build_request(method, path, params=params).url)
            kept = self.connections.take(self.trace.trace_id, method, url)
            if kept is not None:  # sent for this check in the run's concurrent fan-out
                self.log.add(kept[1])
                return kept
        traceparent, request_id = self.trace.new_span()
        answered_by = (self.routes.service_for(path) or GATEWAY) if self.routes is not None else self.service
        sent_headers = {**self.headers, **(headers or {}), "traceparent": traceparent, "X-Request-ID": request_id}
        request = self._lender.build_request(method, path, json=json_body, params=params, headers=sent_headers)
        exchange = Exchange(
            service=self.service,
            method=method,
            url=str(request.url),
            request_headers=dict(request.headers),
            request_body=json.dumps(redact_data(json_body)) if json_body is not None else None,
            request_id=request_id,
            trace_id=self.trace.trace_id,
            answered_by=answered_by,
            sent=Sent(path, json_body, params, {**self.headers, **(headers or {})}),
        )
        hanging = self.board.hanging(self.service) or self.board.hanging(answered_by)
        if hanging is not None:
            exchange.timed_out = True
            who = self.service if self.board.hanging(self.service) else answered_by
            exchange.error = f"not sent: {who} is hanging ({hanging})"
            self.log.add(exchange)
            return None, exchange
        started = time.perf_counter()
        exchange.sent_at = time.time()
        limit, setting = self.limits.for_path(path)
        with self.board.in_flight.sent():  # out until its outcome is known (a timeout's liveness asked too)
            try:
                with self._lender.lease() as client:
                    response = send_capped(client, request, limit, setting)
            except BodyTooLarge as exc:
                exchange.elapsed = time.perf_counter() - started
                exchange.error = str(exc)
                self.log.add(exchange)
                return None, exchange
            except httpx.HTTPError as exc:
                exchange.elapsed = time.perf_counter() - started
                exchange.error = _describe_error(exc, self.timeout)
                if isinstance(exc, httpx.ReadTimeout):
                    exchange.timed_out = True
                    live = self._liveness_answers(answered_by)
                    if live is None:  # it hangs: its later requests fail at once, with this evidence
                        self.board.mark_hanging(answered_by, f"{method} {exchange.url} {exchange.error}, {exchange.ids}; "
                                                             f"its liveness did not answer either")
                    else:  # one slow answer is no hanging service: its other requests are still sent
                        exchange.error += f" ({live})"
                self.log.add(exchange)
                return None, exchange
        exchange.elapsed = time.perf_counter() - started
        exchange.status = response.status_code
        exchange.response_headers = dict(response.headers)
        exchange.response_body = response.text
        self.log.add(exchange)
        response.extensions["polycheck.exchange"] = exchange
        response.extensions["polycheck.client"] = self
        return response, exchange

    def _liveness_answers(self, service: str) -> str | None:
        """After a read timeout: does `service`'s own liveness (`GET /health/live` at its own address) answer in
        time? None when it does not (the service hangs); else what it answered, for the timed-out exchange."""
        url = self.direct_urls.get(service) or (self.base_url if service == self.service else "")
        if not url:
            return None  # no address of its own to ask: the timeout stands for the service
        probe = f"{url.rstrip('/')}/health/live"
        lender = self._lender
        if self._own is None and self.connections is not None and url.rstrip("/") != self.base_url.rstrip("/"):
            lender = self.connections.lender(url, self.timeout)  # its own address's: not this base URL's connection
        try:
            with lender.lease() as client:
                answer = client.get(probe, headers={**self.headers, **SYNTHETIC_HEADERS}, timeout=self.timeout)
        except httpx.ReadTimeout:
            return None
        except httpx.HTTPError as exc:
            return f"{service}'s liveness at {probe} failed without hanging: {type(exc).__name__}"
        return f"{service}'s liveness at {probe} answered HTTP {answer.status_code} at once: a slow request, not a hanging service"

    def json_of(self, response: httpx.Response) -> Any:
        """The response's JSON body; fails the check, showing the body, when it is not JSON."""
        __tracebackhide__ = True
        try:
            return response.json()
        except ValueError:
            exchange = exchange_of(response)
            check_failed(
                f"{exchange.line}: expected a JSON body, got {response.headers.get('content-type', 'no content-type')}: "
                f"{exchange.preview()}\n  ({exchange.ids})",
                culprit=exchange.answered_by,
            )


def exchange_of(response: httpx.Response) -> Exchange:
    """The recorded exchange a response of a ServiceClient came from."""
    return response.extensions["polycheck.exchange"]


def client_of(response: httpx.Response) -> ServiceClient:
    """The ServiceClient a response came from (to blame its answer with `blame_answer`)."""
    return response.extensions["polycheck.client"]


def timeout_from(connect: float, read: float) -> httpx.Timeout:
    return httpx.Timeout(read, connect=connect)
