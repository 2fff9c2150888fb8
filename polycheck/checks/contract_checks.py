"""Verdicts on the contract's cross-cutting promises: propagation headers, 4xx (never 5xx) for client mistakes, and
the `total` of a listing."""

from __future__ import annotations

from typing import Any

import httpx

from polycheck.checks.flow import Diagnose, blamed, diagnosed
from polycheck.checks.health import LIVE
from polycheck.core.failures import check_failed
from polycheck.clients.http import Exchange, ServiceClient, client_of, exchange_of
from polycheck.clients.tracing import parse_traceparent


def expect_propagation(client: ServiceClient, service: str) -> None:
    """The answer echoes X-Request-ID and continues the caller's trace (same trace id, the service's own span id)."""
    __tracebackhide__ = True
    response = client.get(LIVE.path, expect=200)
    exchange = exchange_of(response)
    sent = parse_traceparent(exchange.request_headers.get("traceparent"))
    echoed_id = response.headers.get("x-request-id")
    if echoed_id != exchange.request_id:
        check_failed(f"{exchange.line}: X-Request-ID sent {exchange.request_id}, answered {echoed_id!r}: logs of {service} "
                     f"cannot be found by the request id (Loki)\n  ({exchange.ids})", culprit=service)
    got = parse_traceparent(response.headers.get("traceparent"))
    if got is None or sent is None or got[0] != sent[0]:
        check_failed(f"{exchange.line}: traceparent answered {response.headers.get('traceparent')!r}, expected trace id "
                     f"{exchange.trace_id}: {service} does not continue the caller's trace (Jaeger loses it)\n  ({exchange.ids})",
                     culprit=service)
    if got[1] == sent[1]:
        check_failed(f"{exchange.line}: traceparent answered with the caller's own span id {sent[1]}: {service} opens no span "
                     f"of its own\n  ({exchange.ids})", culprit=service)


def expect_client_error(response: httpx.Response, expected: int | tuple[int, ...], mistake: str, *,
                        diagnose: Diagnose | None = None) -> Any:
    """A client mistake gets the contract's 4xx with a JSON body, never a 5xx nor a success. A mistake ACCEPTED is
    blamed by `diagnose` when given (the state it left behind: which service let it through), else on who answered."""
    __tracebackhide__ = True
    exchange = exchange_of(response)
    allowed = (expected,) if isinstance(expected, int) else expected
    if response.status_code not in allowed:
        expected = " or ".join(map(str, allowed))  # type: ignore[assignment]
        kind = "a server error" if response.status_code >= 500 else ("ACCEPTED" if response.status_code < 300 else "another answer")
        found = diagnosed(diagnose) if response.status_code < 300 else None
        if found is None:
            culprit, evidence = client_of(response).blame_answer(exchange, allowed)
            culprits: tuple[str, ...] = (culprit,)
        else:
            culprits, words = blamed(found)
            evidence = f"\n  {words}"
        check_failed(f"{exchange.line}: {mistake} was {kind} (HTTP {response.status_code}), expected {expected}: "
                     f"{exchange.preview()}{evidence}\n  ({exchange.ids})", culprits=culprits)
    try:
        return response.json()
    except ValueError:
        check_failed(f"{exchange.line}: {mistake}: HTTP {response.status_code} without a JSON error body: {exchange.preview()}\n"
                     f"  ({exchange.ids})", culprit=exchange.answered_by)


def expect_total_counts_the_page(page: dict[str, Any], exchange: Exchange, *, limit: int, offset: int, line: str) -> None:
    """A listing's `total` is never smaller than the items of its page, and equals their count when the page is not
    full (polyshop-api.md `line`); after an `offset`, the offset counts too. Blamed on the service that answered."""
    __tracebackhide__ = True
    items, total = page.get("items"), page.get("total")
    if not isinstance(items, list) or not isinstance(total, int) or isinstance(total, bool) or total < 0:
        check_failed(f"{exchange.line}: items {type(items).__name__}, total {total!r}: {line} promises a list of items and "
                     f"a count\n  ({exchange.ids})", culprit=exchange.answered_by)
    shown, before = len(items), f"offset {offset} + " if offset else ""
    if shown and offset + shown > total:
        check_failed(f"{exchange.line}: total {total} is smaller than {before}the {shown} items on the page ({line}: a total "
                     f"is never smaller than the items on the page): the count misses what the list shows\n"
                     f"  ({exchange.ids})", culprit=exchange.answered_by)
    if shown < limit and total != offset + shown and not (shown == 0 and total <= offset):
        check_failed(f"{exchange.line}: the page is not full ({shown} items, limit {limit}), yet total is {total}, not "
                     f"{offset + shown} ({line}: on a page that is not full the total equals {before}the items' count): "
                     f"the count promises results the listing does not hold\n  ({exchange.ids})", culprit=exchange.answered_by)
