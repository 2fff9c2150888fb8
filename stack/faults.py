"""Faults the local stack can be told to show, set and cleared at run time through the control API.

Not part of the PolyShop contract: this is how the self-tests prove that each check fails
when the fault it exists for is present.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable

from .catalog import DB_FAMILIES, REDIS_FAMILIES, SERVICES
from .contract_faults import CONTRACT_FAULT_KINDS, CONTRACT_FAULT_SCOPES
from .fault_params import FaultError, Scope
from .fault_params import no_params as _no_params
from .fault_params import number as _number
from .fault_params import only as _only
from .fault_params import optional_text as _optional_text
from .fault_params import paths as _paths
from .fault_params import text as _text
from .telemetry import DB_POOL_SIZE


# kind -> (description, parameter normaliser)
FAULT_KINDS: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "down": ("the service refuses connections", lambda p: {}),
    "hang": ("the service accepts requests and never answers", lambda p: {"paths": _paths(p)}),
    "slow": (
        "every answer under 'paths' is delayed by 'seconds'; 'pods': all, or only the canary's",
        lambda p: {"seconds": _number(p, "seconds", 1.5, 0.0, 120.0), "paths": _paths(p),
                   "pods": _text(p, "pods", "all", ("all", "canary"))},
    ),
    "errors": (
        "a 'ratio' of requests under 'paths' answer 'status' (default 500); 'pods': all, or only the canary's",
        lambda p: {
            "ratio": _number(p, "ratio", 1.0, 0.0, 1.0),
            "status": int(_number(p, "status", 500, 500, 599)),
            "paths": _paths(p),
            "pods": _text(p, "pods", "all", ("all", "canary")),
        },
    ),
    "proxy_error": (
        "every request answers the same 502 HTML page, as a proxy or ingress in front of the service would",
        _no_params,
    ),
    "health": (
        "/health reports 'status' degraded (200) or down (503), blaming 'dependency'",
        lambda p: {
            "status": _text(p, "status", "degraded", ("degraded", "down")),
            "dependency": _text(p, "dependency", "postgres"),
        },
    ),
    "not_ready": ("/health/ready answers 503", lambda p: {}),
    "huge_body": (
        "/health answers a JSON body of 'megabytes' MB, streamed (no Content-Length) unless 'declared'",
        lambda p: {"megabytes": _number(p, "megabytes", 50, 0.01, 1024), "declared": bool(p.get("declared", False))},
    ),
    "drop_metric": ("a metric 'family' is missing from /metrics", lambda p: {"family": _text(p, "family")}),
    "wrong_service_label": (
        "/metrics labels its samples service='label' (default '<name>-service') instead of the short name",
        lambda p: {"label": _optional_text(p, "label")},
    ),
    "wrong_version": ("/health reports 'version'", lambda p: {"version": _text(p, "version", "1.2.9")}),
    # business faults (polyshop-api.md flows)
    "reject_logins": ("auth: login answers 401 invalid_credentials even for valid credentials", _no_params),
    "expire_tokens": ("auth: tokens are issued with expires_in 0, expired at once", _no_params),
    "decline_all": ("payment: every payment is declined, whatever the card token", _no_params),
    "stuck_paid": ("order: a paid order never moves on to confirmed (the confirmation is lost)", _no_params),
    "ignore_idempotency": ("order: a repeated Idempotency-Key creates a new order", _no_params),
    "lose_after_hold": ("order: a create holds the stock, then answers 503 without recording the order (a crash "
                        "mid-create): the hold stays, and no order, nor its Idempotency-Key, is known", _no_params),
    "no_confirm": ("inventory: reservations are never confirmed, so orders stop at paid", _no_params),
    "leak_on_cancel": ("inventory: cancelling an order does not release its stock", _no_params),
    "empty_results": ("search: every query returns no items", _no_params),
    "index_stalled": ("search: indexing stops; lag_seconds grows without bound", _no_params),
    "drop": ("notification: messages are accepted but never reach the outbox", _no_params),
    "broken_storefront": ("gateway: the storefront loads but its script throws before listing products", _no_params),
    # faults whose evidence alone names the culprit, or cannot tell it from another service (issue #16)
    "paid_unpublished": ("order: a paid order never tells inventory, so it stays paid and its reservation held", _no_params),
    "cancel_keeps_reservation": ("order: cancelling an order never releases its reservation", _no_params),
    "refund_not_kept": ("payment: a refund answers refunded but the payment stays succeeded", _no_params),
    "refund_reverts": ("payment: a refund is kept, then after 'seconds' the payment reads succeeded again",
                       lambda p: {"seconds": _number(p, "seconds", 5.0, 0.0, 3600.0)}),
    "late_duplicate": ("notification: a confirmed order sends a second order_confirmed message 'seconds' after the first",
                       lambda p: {"seconds": _number(p, "seconds", 5.0, 0.0, 3600.0)}),
    "hold_beyond_stock": ("inventory: a hold beyond the stock succeeds; available goes negative", _no_params),
    "me_other_user": ("auth: /api/auth/me answers another user's profile for a valid token", _no_params),
    "empty_catalogue": ("product: the product list answers no items", _no_params),
    # metric-moving faults (post-deploy validation)
    "consumer_lag": (
        "a consumer group trails its topic ('topic' or all) by 'lag' messages, growing by 'growth_per_second'",
        lambda p: {
            "lag": _number(p, "lag", 10000, 0, 1e9),
            "growth_per_second": _number(p, "growth_per_second", 0, 0, 1e6),
            "topic": _optional_text(p, "topic"),
            "set_at": time.time(),
        },
    ),
    "consumer_errors": (
        "a 'ratio' of the consumer's polls and deliveries ('topic' or all) fail and are retried",
        lambda p: {"ratio": _number(p, "ratio", 1.0, 0.0, 1.0), "topic": _optional_text(p, "topic")},
    ),
    "db_saturation": (
        "runaway queries hold 'connections' of the DB pool (default: all); requests wait, then 503",
        lambda p: {"connections": int(_number(p, "connections", DB_POOL_SIZE, 1, DB_POOL_SIZE))},
    ),
    "ttl_violations": (
        "cache expiry breaks: entries older than 'ttl_seconds' are served stale and counted",
        lambda p: {"ttl_seconds": _number(p, "ttl_seconds", 0.0, 0.0, 3600.0)},
    ),
    # contract faults (stack.contract_faults)
    **CONTRACT_FAULT_KINDS,
}


def _consuming(service: str, params: dict[str, Any]) -> str | None:
    spec = SERVICES.get(service)
    if spec is None or not spec.consumes:
        return f"{service} consumes no topic"
    topic = params.get("topic")
    if topic is not None and topic not in spec.consumes:
        return f"{service} does not consume {topic!r} (it consumes {', '.join(spec.consumes)})"
    return None


def _with_families(*families: str) -> Scope:
    def check(service: str, params: dict[str, Any]) -> str | None:
        spec = SERVICES.get(service)
        if spec is None or not set(families) <= set(spec.families):
            return f"{service} exports no {', '.join(families)}"
        return None

    return check


# kind -> which services can show it: None when it applies, else why not
FAULT_SCOPES: dict[str, Scope] = {
    "reject_logins": _only("auth"),
    "expire_tokens": _only("auth"),
    "decline_all": _only("payment"),
    "stuck_paid": _only("order"),
    "ignore_idempotency": _only("order"),
    "lose_after_hold": _only("order"),
    "no_confirm": _only("inventory"),
    "leak_on_cancel": _only("inventory"),
    "empty_results": _only("search"),
    "index_stalled": _only("search"),
    "drop": _only("notification"),
    "broken_storefront": _only("gateway"),
    "paid_unpublished": _only("order"),
    "cancel_keeps_reservation": _only("order"),
    "refund_not_kept": _only("payment"),
    "refund_reverts": _only("payment"),
    "late_duplicate": _only("notification"),
    "hold_beyond_stock": _only("inventory"),
    "me_other_user": _only("auth"),
    "empty_catalogue": _only("product"),
    "consumer_lag": _consuming,
    "consumer_errors": _consuming,
    "db_saturation": _with_families(*DB_FAMILIES),
    "ttl_violations": _with_families(*REDIS_FAMILIES),
    **CONTRACT_FAULT_SCOPES,
}


@dataclass
class FaultBoard:
    """The faults currently set, per service, and the hooks that act on them."""

    active: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    _released: dict[str, asyncio.Event] = field(default_factory=dict)
    _counters: dict[str, int] = field(default_factory=dict)
    on_change: list[Callable[[str], Any]] = field(default_factory=list)

    def set(self, service: str, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        return self.set_many([service], kind, params)

    def set_many(self, services: list[str], kind: str, params: dict[str, Any]) -> dict[str, Any]:
        """Set one fault on several services at once; on none of them when it does not apply to one."""
        if kind not in FAULT_KINDS:
            raise FaultError(f"unknown fault kind {kind!r}; known: {', '.join(sorted(FAULT_KINDS))}")
        normalised = FAULT_KINDS[kind][1](params)
        scope = FAULT_SCOPES.get(kind)
        for service in services:
            refusal = scope(service, normalised) if scope else None
            if refusal:
                raise FaultError(f"fault {kind!r} does not apply to {service}: {refusal}")
        for service in services:
            self.active.setdefault(service, {})[kind] = dict(normalised)
            if kind == "hang":
                self._released[service] = asyncio.Event()
            self._notify(service)
        return normalised

    def clear(self, service: str | None = None, kind: str | None = None) -> None:
        services = [service] if service else list(self.active)
        for name in services:
            kinds = self.active.get(name, {})
            for k in [kind] if kind else list(kinds):
                kinds.pop(k, None)
                if k == "hang" and name in self._released:
                    self._released.pop(name).set()
            if not kinds:
                self.active.pop(name, None)
            self._counters.pop(name, None)
            self._notify(name)

    def get(self, service: str, kind: str) -> dict[str, Any] | None:
        """The fault's parameters while it is set (an empty dict for a fault without any), else None."""
        return self.active.get(service, {}).get(kind)

    def is_set(self, service: str, kind: str) -> bool:
        return kind in self.active.get(service, {})

    def matching(self, service: str, kind: str, path: str) -> dict[str, Any] | None:
        """The fault of this kind if it applies to a request for this path."""
        params = self.get(service, kind)
        if params is None:
            return None
        if any(path.startswith(prefix) for prefix in params.get("paths", ["/"])):
            return params
        return None

    def should_fail(self, service: str, ratio: float) -> bool:
        """A deterministic share: exactly round(n * ratio) of the first n requests fail."""
        n = self._counters.get(service, 0)
        self._counters[service] = n + 1
        return math.floor((n + 1) * ratio) > math.floor(n * ratio)

    async def wait_released(self, service: str, limit: float = 600.0) -> None:
        event = self._released.get(service)
        if event is not None:
            try:
                await asyncio.wait_for(event.wait(), timeout=limit)
            except TimeoutError:
                pass

    def _notify(self, service: str) -> None:
        for callback in self.on_change:
            callback(service)
