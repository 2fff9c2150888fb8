"""Faults that each break one promise of polyshop-api.md, for the self-tests of the contract checks.

Merged into `stack.faults.FAULT_KINDS` / `FAULT_SCOPES`; each is implemented where the promise is kept
(the service named in its scope, or stack.middleware for those any service can show).
"""

from __future__ import annotations

from typing import Any
from collections.abc import Callable

from .catalog import GATEWAY_ROUTES, SERVICES
from .fault_params import FaultError, Scope, integer, no_params, only, text

BUSINESS_SERVICES = tuple(name for name in SERVICES if name != "gateway")
MAX_EXTRA_CENTS = 1_000_000
MAX_COUNT_OFF = 1_000  # how far a faulty listing total may be off


def _misroute(params: dict[str, Any]) -> dict[str, Any]:
    prefix = text(params, "prefix", "/api/search")
    if not prefix.startswith("/api/"):
        raise FaultError(f"'prefix' must be a path under /api/, got {prefix!r}")
    to = text(params, "to", "product", BUSINESS_SERVICES)
    owner = next((service for route, service in GATEWAY_ROUTES if prefix.startswith(route)), None)
    if owner == to:
        raise FaultError(f"{prefix} is routed to {to} already: name another service in 'to'")
    return {"prefix": prefix, "to": to}


def _drop_header(params: dict[str, Any]) -> dict[str, Any]:
    prefix = text(params, "prefix", "/api/orders")
    if not prefix.startswith("/api/"):
        raise FaultError(f"'prefix' must be a path under /api/, got {prefix!r}")
    return {"prefix": prefix, "header": text(params, "header", "authorization").lower()}


def _extra_cents(default: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda p: {"extra_cents": integer(p, "extra_cents", default, 1, MAX_EXTRA_CENTS)}


def _count(key: str, default: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda p: {key: integer(p, key, default, 1, MAX_COUNT_OFF)}


# kind -> (description, parameter normaliser)
CONTRACT_FAULT_KINDS: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    # any service
    "no_request_id": ("responses carry no X-Request-ID header", no_params),
    "break_trace": (
        "the caller's traceparent is not continued: a new trace id is returned and propagated to callees",
        no_params,
    ),
    "error_on_bad_input": (
        "a malformed or invalid body or query (the contract's 422 invalid_body/invalid_query) answers 500",
        no_params,
    ),
    # gateway
    "misroute": (
        "gateway: requests under 'prefix' (default /api/search) go to service 'to' (default product)",
        _misroute,
    ),
    "drop_header": (
        "gateway: requests under 'prefix' (default /api/orders) are passed on without the header 'header' (default "
        "authorization)",
        _drop_header,
    ),
    # auth
    "accept_forged": (
        "auth: tokens with a forged signature are accepted (by /api/auth/me and every service)",
        no_params,
    ),
    "provision_anyone": ("auth: POST /api/auth/users provisions non-synthetic emails (201, not 403)", no_params),
    # product
    "bad_pagination": ("product: 'limit' is ignored; a page holds every product from 'offset' on", no_params),
    "short_total": (
        "product: a list's total is 'missing' (default 1) less than the catalogue holds, below the items of a last page",
        _count("missing", 1),
    ),
    # inventory
    "no_stock_move": (
        "inventory: reservations are held and confirmed as usual, but confirming gives the stock back",
        no_params,
    ),
    # order
    "wrong_total": (
        "order: a new order's total_cents is the sum of its lines plus 'extra_cents' (default 1)",
        _extra_cents(1),
    ),
    "cancel_keeps_payment": ("order: cancelling releases the stock but never refunds the captured payment", no_params),
    "leak_orders": ("order: another user's order is readable (200, not 404)", no_params),
    "no_idempotency_key_check": (
        "order: POST /api/orders without Idempotency-Key is accepted (201, not 400)",
        no_params,
    ),
    "oversell": ("order: an order for more than the available stock is accepted (201, not 409)", no_params),
    # payment
    "overcharge": (
        "payment: a payment records and returns amount_cents plus 'extra_cents' (default 100)",
        _extra_cents(100),
    ),
    "accept_mismatch": (
        "payment: an amount or currency that differs from the order's is accepted (201, not 422)",
        no_params,
    ),
    "leak_payments": ("payment: another user's payment is readable (200, not 404)", no_params),
    "charge_real_cards": ("payment: synthetic accounts may pay with non-sandbox card tokens (not 422)", no_params),
    "accept_foreign_currency": (
        "payment: a currency that differs from the order's is accepted (201, not 422); a wrong amount is still 422",
        no_params,
    ),
    # notification
    "outbox_unrestricted": (
        "notification: the outbox of a non-synthetic address is readable (200, not 403)",
        no_params,
    ),
    "duplicate_confirmation": (
        "notification: a confirmed order sends a second order_confirmed message 0.3-0.5 s after the first",
        no_params,
    ),
    # search
    "misses_new": ("search: the product a query names exactly is missing from the results", no_params),
    "padded_total": (
        "search: total is 'extra' (default 2) more than the hits, also on a page that holds them all",
        _count("extra", 2),
    ),
}

# kind -> which services can show it (kinds not listed apply to every service)
CONTRACT_FAULT_SCOPES: dict[str, Scope] = {
    "misroute": only("gateway"),
    "drop_header": only("gateway"),
    "accept_forged": only("auth"),
    "provision_anyone": only("auth"),
    "bad_pagination": only("product"),
    "short_total": only("product"),
    "no_stock_move": only("inventory"),
    "wrong_total": only("order"),
    "cancel_keeps_payment": only("order"),
    "leak_orders": only("order"),
    "no_idempotency_key_check": only("order"),
    "oversell": only("order"),
    "overcharge": only("payment"),
    "accept_mismatch": only("payment"),
    "leak_payments": only("payment"),
    "charge_real_cards": only("payment"),
    "accept_foreign_currency": only("payment"),
    "outbox_unrestricted": only("notification"),
    "duplicate_confirmation": only("notification"),
    "misses_new": only("search"),
    "padded_total": only("search"),
}
