"""Notification: email simulation. Messages to synthetic addresses land in the outbox, never in SMTP.

`order.confirmed` (topic `orders`) sends the buyer one `order_confirmed` message per order; a test send
is queued on the `notifications` topic and delivered from there. Faults: `drop` (nothing is delivered),
`outbox_unrestricted` (any address's mail is readable), `duplicate_confirmation` (a second order_confirmed
message follows the first after DUPLICATE_DELAY_SECONDS).
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..context import ServiceContext
from ..domain import OutboxMessage
from ..events import Event
from ..http_util import error, is_synthetic, json_body
from ..middleware import trace_of
from .parts import ServiceParts, bus_of, store_of

TEMPLATES = {
    "smoke_test": "PolyShop test message",
    "order_confirmed": "Your PolyShop order {order_id} is confirmed",
}
DUPLICATE_DELAY_SECONDS = (0.3, 0.5)


def _address(raw: object) -> str | None:
    if not isinstance(raw, str):
        return None
    email = raw.strip().lower()
    local, _, domain = email.partition("@")
    return email if local and "." in domain and len(email) <= 254 else None


def build(ctx: ServiceContext) -> ServiceParts:
    data = store_of(ctx).notifications
    bus = bus_of(ctx)
    pending: set[asyncio.Task[None]] = set()  # duplicate deliveries still to come
    rng = random.Random()

    async def cancel_pending() -> None:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    ctx.shared.setdefault("closers", []).append(cancel_pending)

    def deliver(message_id: str, to: str, template: str, order_id: str | None, dedup_key: str) -> bool:
        """Render and send once per de-duplication key; synthetic recipients go to the outbox. True when sent."""
        if dedup_key in data.sent_keys:
            return False
        if ctx.faults.is_set(ctx.name, "drop"):
            data.dropped += 1  # the bug: accepted, never delivered
            return False
        subject = TEMPLATES[template].format(order_id=order_id)
        message = OutboxMessage(message_id, to, template, subject, order_id, sent_at=time.time())
        (data.outbox if is_synthetic(to) else data.smtp_relay).append(message)
        data.sent_keys.add(dedup_key)
        return True

    def send_again_later(to: str, order_id: str, delay: float | None = None) -> None:
        """The duplicate_confirmation bug (a little later) and the late_duplicate one (`delay` seconds later): the
        confirmation goes out a second time."""

        async def again() -> None:
            await asyncio.sleep(rng.uniform(*DUPLICATE_DELAY_SECONDS) if delay is None else delay)
            deliver(f"msg_{secrets.token_hex(8)}", to, "order_confirmed", order_id, f"order_confirmed:{order_id}:again")

        task = asyncio.get_running_loop().create_task(again())
        pending.add(task)
        task.add_done_callback(pending.discard)

    async def send_test(request: Request) -> JSONResponse:
        body = await json_body(request)
        to = _address(body.get("to")) if body else None
        if body is None or to is None or body.get("template") != "smoke_test":
            return error(422, "invalid_body", detail='expected {"to": <email>, "template": "smoke_test"}')
        if not is_synthetic(to):
            return error(403, "forbidden", detail="test messages go only to synthetic addresses")
        message_id = f"msg_{secrets.token_hex(8)}"
        bus.publish(
            "notifications", "notification.requested", to,
            {"id": message_id, "to": to, "template": "smoke_test"}, trace_of(request.scope),
        )
        return JSONResponse({"id": message_id, "status": "queued"}, status_code=202)

    async def outbox(request: Request) -> JSONResponse:
        to = _address(request.query_params.get("to"))
        if to is None:
            return error(422, "invalid_query", detail="?to=<email> is required")
        if not is_synthetic(to):
            if not ctx.faults.is_set(ctx.name, "outbox_unrestricted"):
                return error(403, "forbidden", detail="only synthetic addresses may be read")
            return JSONResponse({"messages": [m.as_json() for m in data.smtp_relay if m.to == to]})  # the bug
        return JSONResponse({"messages": [m.as_json() for m in data.outbox if m.to == to]})

    async def on_notification_event(event: Event) -> None:
        if event.type == "notification.requested":
            deliver(event.data["id"], event.data["to"], event.data["template"], None, event.data["id"])

    async def on_order_event(event: Event) -> None:
        to = _address(event.data.get("email"))
        if event.type != "order.confirmed" or to is None:
            return
        order_id = str(event.data["order_id"])
        sent = deliver(f"msg_{secrets.token_hex(8)}", to, "order_confirmed", order_id, f"order_confirmed:{order_id}")
        if sent and ctx.faults.is_set(ctx.name, "duplicate_confirmation"):
            send_again_later(to, order_id)
        late = ctx.faults.get(ctx.name, "late_duplicate") if sent else None
        if late is not None:
            send_again_later(to, order_id, float(late["seconds"]))

    return ServiceParts(
        routes=[
            Route("/api/notifications/test", send_test, methods=["POST"]),
            Route("/api/notifications/outbox", outbox, methods=["GET"]),
        ],
        subscriptions={"orders": on_order_event, "notifications": on_notification_event},
    )
