"""The health and metrics verdicts of runbook Step 4 (/health, /metrics) for one service."""

from __future__ import annotations

import re
from typing import Any

from polycheck.core.config import GatewayProbe
from polycheck.core.exposition import ExpositionError, parse_exposition
from polycheck.core.failures import check_failed
from polycheck.clients.fanout import Read
from polycheck.clients.http import ServiceClient, exchange_of

# The reads of runbook Step 4, each written once: the suites' markers name them, the helpers below send them.
HEALTH = Read("/health")
LIVE = Read("/health/live")
READY = Read("/health/ready")
METRICS = Read("/metrics")

SEMVER = re.compile(r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


def expect_health_ok(client: ServiceClient, service: str, *, within: float) -> dict[str, Any]:
    """/health is 200 with status "ok", this service's name and a semantic version. A service that reports a
    dependency of its own impaired (degraded, or down naming it) fails, naming the dependency: a rollback would
    not mend it (`rollback.on_dependency`)."""
    __tracebackhide__ = True
    response = client.get(HEALTH.path, expect=(200, 503), within=within, budget_name="health latency budget")
    exchange = exchange_of(response)
    where = f"{exchange.line}"
    if response.status_code == 503:
        down = _json_or_none(response)
        check_failed(f"{where}: expected HTTP 200, got 503: {exchange.preview()}\n  ({exchange.ids})",
                     dependency=_impaired(down) or None)
    body = client.json_of(response)
    problems = []
    if not isinstance(body, dict):
        check_failed(f"{where}: expected a JSON object, got {body!r}\n  ({exchange.ids})")
    impaired = _impaired(body)
    if body.get("status") != "ok":
        detail = f" (impaired dependencies: {_impaired_checks(body)})" if impaired else ""
        problems.append(f"status is {body.get('status')!r}, expected 'ok'{detail}")
    if body.get("service") != service:
        problems.append(f"service is {body.get('service')!r}, expected {service!r} (is the URL pointing at the right service?)")
    version = body.get("version")
    if not isinstance(version, str) or not SEMVER.match(version):
        problems.append(f"version is {version!r}, expected a semantic version such as '1.3.0'")
    if problems:
        check_failed(f"{where}: " + "; ".join(problems) + f"\n  ({exchange.ids})",
                     dependency=impaired if body.get("status") != "ok" and impaired else None)
    return body


def _json_or_none(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _impaired_checks(body: Any) -> dict[str, Any]:
    checks = body.get("checks") if isinstance(body, dict) else None
    return {k: v for k, v in checks.items() if v != "ok"} if isinstance(checks, dict) else {}


def _impaired(body: Any) -> str:
    """The dependencies a /health body names impaired, as one text ("kafka" or "kafka, postgres"); "" for none."""
    return ", ".join(sorted(_impaired_checks(body)))


def expect_release_version(client: ServiceClient, service: str, expected: str, *, source: str) -> None:
    """/health reports the release version this run expects."""
    __tracebackhide__ = True
    response = client.get(HEALTH.path)
    body = client.json_of(response)
    exchange = exchange_of(response)
    running = body.get("version") if isinstance(body, dict) else None
    if running is None:
        check_failed(
            f"{exchange.line}: HTTP {response.status_code} with no version in the body: {exchange.preview()}\n"
            f"  ({exchange.ids})"
        )
    if running.lstrip("v") != expected.lstrip("v"):
        check_failed(
            f"{exchange.line}: {service} runs version {running!r}, but this release is {expected!r} ({source}); "
            f"the deploy did not roll out, or rolled back\n  ({exchange.ids})"
        )


def expect_probe_ok(client: ServiceClient, read: Read, probe: str, *, within: float) -> None:
    """A Kubernetes probe endpoint (`LIVE`, `READY`) answers 200."""
    __tracebackhide__ = True
    response, exchange = client.send(read.method, read.path)
    if response is None:
        check_failed(f"{exchange.line}: {probe} probe: {exchange.error}\n  ({exchange.ids})")
    if response.status_code != 200:
        consequence = {
            "readiness": "Kubernetes takes the pod out of the Service: it gets no traffic",
            "liveness": "Kubernetes will restart the container",
        }[probe]
        check_failed(
            f"{exchange.line}: {probe} probe answered HTTP {response.status_code}, expected 200 "
            f"({consequence}): {exchange.preview()}\n  ({exchange.ids})"
        )
    if exchange.elapsed > within:
        check_failed(f"{exchange.line}: {probe} probe took {exchange.elapsed:.2f} s, over the {within:g} s budget\n  ({exchange.ids})")


def expect_metric_families(client: ServiceClient, service: str, families: list[str], *, within: float) -> None:
    """/metrics parses as a Prometheus exposition, carries the contract's families, labelled with this service."""
    __tracebackhide__ = True
    response = client.get(METRICS.path, expect=200, within=within, budget_name="health latency budget")
    exchange = exchange_of(response)
    try:
        exposition = parse_exposition(response.text)
    except ExpositionError as exc:
        check_failed(
            f"{exchange.line}: not a valid Prometheus exposition ({exc}): {exchange.preview()}\n  ({exchange.ids})"
        )
    missing = [family for family in families if not exposition.has(family)]
    if missing:
        check_failed(
            f"{exchange.line}: {service} does not export {', '.join(missing)} "
            f"(expected by the contract; it exports {', '.join(sorted(exposition.families)) or 'nothing'}); "
            f"dashboards and post-deploy validation go blind on it\n  ({exchange.ids})"
        )
    labelled = exposition.label_values("http_requests_total", "service")
    if "http_requests_total" in families and labelled and labelled != {service}:
        check_failed(
            f"{exchange.line}: http_requests_total carries service={sorted(labelled)}, expected only {service!r} "
            f"(the short name); Prometheus queries by service would miss it\n  ({exchange.ids})"
        )


def expect_gateway_route(gateway: ServiceClient, service: str, probe: GatewayProbe, *, within: float) -> None:
    """A request through the gateway reaches the service behind it (answered by the service, not by the gateway)."""
    __tracebackhide__ = True
    response, exchange = gateway.send(probe.method, probe.path)
    if response is None:
        check_failed(f"{exchange.line}: the gateway did not answer for {service}: {exchange.error}\n  ({exchange.ids})",
                     culprit=gateway.blame_unanswered(exchange))
    if response.status_code not in probe.expect_status:
        wanted = " or ".join(map(str, probe.expect_status))
        hint = " (the gateway could not reach the service)" if response.status_code in (502, 503, 504) else ""
        culprit, evidence = gateway.blame_answer(exchange, probe.expect_status)
        check_failed(
            f"{exchange.line}: routed to {service}, expected HTTP {wanted}, got {response.status_code}{hint}: "
            f"{exchange.preview()}{evidence}\n  ({exchange.ids})",
            culprit=culprit,
        )
    if exchange.elapsed > within:
        check_failed(
            f"{exchange.line}: routed to {service}, answered in {exchange.elapsed:.2f} s, over the {within:g} s budget\n"
            f"  ({exchange.ids})",
            culprit=exchange.answered_by,
        )



def expect_gateway_passes_on(gateway: ServiceClient, service: str, probe: GatewayProbe, headers: dict[str, str]) -> None:
    """The gateway passes a request on as the caller sent it, headers included: through the gateway, the routed
    service answers it as it does when asked directly (the gateway blamed only when that does not reproduce)."""
    __tracebackhide__ = True
    url = gateway.direct_urls.get(service)
    if not url:
        return  # no address of its own to compare with
    with ServiceClient(service, url, timeout=gateway.timeout, trace=gateway.trace, log=gateway.log, board=gateway.board,
                       connections=gateway.connections, limits=gateway.limits) as direct:
        straight, seen = direct.send(probe.method, probe.path, headers=headers)
    if straight is None:
        return  # the service's own outage is its own checks' to judge
    response, exchange = gateway.send(probe.method, probe.path, headers=headers, fresh=True)
    if response is None:
        check_failed(f"{exchange.line}: the gateway did not answer for {service}: {exchange.error}\n  ({exchange.ids})",
                     culprit=gateway.blame_unanswered(exchange))
    if response.status_code != straight.status_code:
        culprit, evidence = gateway.blame_answer(exchange, (straight.status_code,))
        check_failed(
            f"{exchange.line}: with the caller's headers ({', '.join(sorted(headers))}) the gateway answered HTTP "
            f"{response.status_code}, {service} asked directly HTTP {straight.status_code} ({seen.ids}): "
            f"{exchange.preview()}{evidence}\n  ({exchange.ids})",
            culprit=culprit,
        )
