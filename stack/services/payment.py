"""Payment: charges against an order with a card token, refunds; publishes on the `payments` topic.

The card provider is simulated: `tok_sandbox_decline` is declined, other `tok_sandbox_*` tokens succeed;
synthetic accounts may use only sandbox tokens. An order takes one payment (retry with the same key).
Faults: `decline_all` (every payment is declined), `overcharge` (the charge is `extra_cents` more than asked),
`accept_mismatch` (an amount or currency unlike the order's is charged), `accept_foreign_currency` (a currency
unlike the order's is charged, a wrong amount still refused), `leak_payments` (any user's payment is readable),
`charge_real_cards` (synthetic accounts may use real card tokens).
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..context import ServiceContext
from ..domain import Payment
from ..http_util import (
    bearer_claims,
    body_fingerprint,
    error,
    idempotency_key,
    is_synthetic,
    is_synthetic_request,
    json_body,
    missing_idempotency_key,
    owned_by_caller,
    positive_int,
    unauthorized,
)
from ..middleware import TraceContext, trace_of
from ..peers import PeerClient, PeerError
from .parts import ServiceParts, bus_of, store_of

SANDBOX_PREFIX = "tok_sandbox_"
DECLINED_TOKENS = ("tok_sandbox_decline",)
CARD_PROVIDER_LATENCY_SECONDS = (0.005, 0.03)
PAYMENT_BODY = 'expected {"order_id": str, "amount_cents": int > 0, "currency": "EUR", "card_token": "tok_..."}'


def _payment_request(body: dict[str, Any] | None) -> dict[str, Any] | None:
    """The validated fields of a payment request, or None when malformed."""
    if body is None:
        return None
    order_id, currency, token = body.get("order_id"), body.get("currency"), body.get("card_token")
    amount = positive_int(body.get("amount_cents"), 10**9)
    if not isinstance(order_id, str) or not order_id or amount is None:
        return None
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        return None
    if not isinstance(token, str) or not token.startswith("tok_") or len(token) > 100:
        return None
    return {"order_id": order_id, "amount_cents": amount, "currency": currency.upper(), "card_token": token}


def build(ctx: ServiceContext) -> ServiceParts:
    data = store_of(ctx).payments
    bus = bus_of(ctx)
    peers = PeerClient(ctx)
    provider = random.Random()
    reverting: set[asyncio.Task[None]] = set()  # refunds the refund_reverts fault will undo

    def faulty(kind: str) -> bool:
        return ctx.faults.is_set(ctx.name, kind)

    def publish(payment: Payment, type_: str, trace: TraceContext) -> None:
        body = {
            "payment_id": payment.id,
            "order_id": payment.order_id,
            "amount_cents": payment.amount_cents,
            "currency": payment.currency,
            "status": payment.status,
        }
        bus.publish("payments", type_, payment.order_id, body, trace)

    def refund(payment: Payment, trace: TraceContext) -> bool:
        """Give a captured payment back; True when this call refunded it."""
        if payment.status != "succeeded":
            return False
        if faulty("refund_not_kept"):
            return True  # the bug: the refund is answered, never recorded
        payment.status, payment.refunded_at = "refunded", time.time()
        publish(payment, "payment.refunded", trace)
        reverts = ctx.faults.get(ctx.name, "refund_reverts")
        if reverts is not None:  # the bug: the refund is undone later (a reconciliation job that re-captures)
            async def revert() -> None:
                await asyncio.sleep(float(reverts["seconds"]))
                if payment.status == "refunded":
                    payment.status = "succeeded"

            reverting.add(task := asyncio.get_running_loop().create_task(revert()))
            task.add_done_callback(reverting.discard)
        return True

    async def charge(request: Request, claims: dict[str, Any], fields: dict[str, Any]) -> Payment | JSONResponse:
        """Check the order and charge the card; the payment, or the error to answer."""
        trace = trace_of(request.scope)
        synthetic = is_synthetic(str(claims.get("email", ""))) or is_synthetic_request(request)
        if synthetic and not fields["card_token"].startswith(SANDBOX_PREFIX) and not faulty("charge_real_cards"):
            return error(422, "sandbox_token_required", detail="synthetic accounts pay only with tok_sandbox_* tokens")
        answer = await peers.call("order", "GET", f"/internal/orders/{fields['order_id']}", trace, synthetic=synthetic)
        order = answer.json() if answer.status_code == 200 else None
        if order is None or order["user_id"] != claims["sub"]:
            return error(404, "not_found", detail="no such order")
        foreign = fields["currency"] != order["currency"] and not faulty("accept_foreign_currency")
        mismatch = fields["amount_cents"] != order["total_cents"] or foreign
        if mismatch and not faulty("accept_mismatch"):
            return error(
                422,
                "amount_mismatch",
                detail="amount_cents and currency must match the order",
                expected={"amount_cents": order["total_cents"], "currency": order["currency"]},
            )
        if order["status"] != "pending_payment" or order["id"] in data.by_order:
            return error(409, "order_not_payable", status=order["status"], payment_id=data.by_order.get(order["id"]))
        await asyncio.sleep(provider.uniform(*CARD_PROVIDER_LATENCY_SECONDS))  # the card provider's round trip
        if order["id"] in data.by_order:  # another key paid it meanwhile
            return error(409, "order_not_payable", status=order["status"], payment_id=data.by_order[order["id"]])
        token = fields["card_token"]
        declined = faulty("decline_all") or token in DECLINED_TOKENS
        overcharge = ctx.faults.get(ctx.name, "overcharge")
        payment = Payment(
            id=f"pay_{secrets.token_hex(8)}",
            order_id=order["id"],
            user_id=claims["sub"],
            amount_cents=fields["amount_cents"] + (overcharge["extra_cents"] if overcharge else 0),
            currency=fields["currency"],
            status="declined" if declined else "succeeded",
            card_brand=token.removeprefix(SANDBOX_PREFIX).removeprefix("tok_").split("_")[0] or "card",
            synthetic=synthetic,
        )
        data.payments[payment.id] = payment
        data.by_order[payment.order_id] = payment.id
        publish(payment, f"payment.{payment.status}", trace)
        return payment

    async def create_payment(request: Request) -> JSONResponse:
        claims = bearer_claims(ctx, request)
        if claims is None:
            return unauthorized()
        key = idempotency_key(request)
        if key is None:
            return missing_idempotency_key()
        body = await json_body(request)
        fields = _payment_request(body)
        if body is None or fields is None:
            return error(422, "invalid_body", detail=PAYMENT_BODY)
        scope, fingerprint = (claims["sub"], key), body_fingerprint(body)
        async with data.key_locks[scope]:
            seen = data.idempotency.get(scope)
            if seen is not None:
                if seen[1] != fingerprint:
                    return error(422, "idempotency_key_reused", detail="this key was used with a different body")
                return JSONResponse(data.payments[seen[0]].as_json(), status_code=200)
            try:
                charged = await charge(request, claims, fields)
            except PeerError as exc:
                return exc.response()
            if isinstance(charged, JSONResponse):
                return charged
            data.idempotency[scope] = (charged.id, fingerprint)
            return JSONResponse(charged.as_json(), status_code=201)

    def owned_payment(request: Request, leak: bool = False) -> Payment | JSONResponse:
        """The signed-in user's payment named in the path, or the 401/404 answer to give instead."""
        return owned_by_caller(ctx, request, data.payments, "payment_id", "payment", leak=leak)

    async def get_payment(request: Request) -> JSONResponse:
        payment = owned_payment(request, leak=faulty("leak_payments"))
        if isinstance(payment, JSONResponse):
            return payment
        return JSONResponse(payment.as_json())

    async def refund_payment(request: Request) -> JSONResponse:
        payment = owned_payment(request)
        if isinstance(payment, JSONResponse):
            return payment
        if payment.status == "declined":
            return error(409, "not_refundable", detail="a declined payment captured nothing", status=payment.status)
        refund(payment, trace_of(request.scope))
        if faulty("refund_not_kept"):
            return JSONResponse({**payment.as_json(), "status": "refunded"})
        return JSONResponse(payment.as_json())

    async def refund_for_order(request: Request) -> JSONResponse:
        """Cluster-internal (order service): refund what was captured for an order, if anything."""
        payment_id = data.by_order.get(request.path_params["order_id"])
        payment = data.payments[payment_id] if payment_id else None
        if payment is not None:
            refund(payment, trace_of(request.scope))
        return JSONResponse({"payment": payment.as_json() if payment else None})

    return ServiceParts(
        routes=[
            Route("/api/payments", create_payment, methods=["POST"]),
            Route("/api/payments/{payment_id}", get_payment, methods=["GET"]),
            Route("/api/payments/{payment_id}/refund", refund_payment, methods=["POST"]),
            Route("/internal/orders/{order_id}/refund", refund_for_order, methods=["POST"]),
        ]
    )
