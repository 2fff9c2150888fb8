"""Each contract fault (stack.contract_faults) breaks its one promise of polyshop-api.md, over real HTTP.

With the fault set the stack misbehaves exactly as described; once it is cleared the same requests get
the contract's answers again. One stack process per session (tests/conftest.py); faults are cleared
around every test. Asynchronous outcomes are polled with a deadline.
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest

from polycheck.core.polling import poll
from tests.support.shop import ASYNC_TIMEOUT, PASSWORD, Buyer, Shop
from tests.support.stack_control import StackControl

SERVICES = ("auth", "product", "inventory", "order", "payment", "notification", "search", "gateway")
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


def _trace_id(response: httpx.Response) -> str:
    match = TRACEPARENT.match(response.headers.get("traceparent", ""))
    assert match, f"no valid traceparent in {dict(response.headers)}"
    return match.group(1)


def _payment(shop: Shop, buyer: Buyer, payment_id: str) -> httpx.Response:
    return shop.http.get(f"/api/payments/{payment_id}", headers=buyer.auth)


def _cancel(shop: Shop, buyer: Buyer, order_id: str) -> httpx.Response:
    return shop.http.post(f"/api/orders/{order_id}/cancel", headers=buyer.auth)


def _confirmed_order(shop: Shop, buyer: Buyer, sku: str, qty: int = 1) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new order, paid and confirmed: (order, payment)."""
    placed = shop.place_order(buyer, sku, qty)
    assert placed.status_code == 201, placed.text
    order = placed.json()
    paid = shop.pay(buyer, order)
    assert paid.status_code == 201 and paid.json()["status"] == "succeeded", paid.text
    shop.wait_for_order(buyer, order["id"], "confirmed")
    return order, paid.json()


# --- the control API --------------------------------------------------------------------------


NEW_KINDS = {
    "misroute": "gateway", "no_stock_move": "inventory", "overcharge": "payment", "accept_mismatch": "payment",
    "wrong_total": "order", "cancel_keeps_payment": "order", "leak_orders": "order", "leak_payments": "payment",
    "outbox_unrestricted": "notification", "duplicate_confirmation": "notification",
    "no_idempotency_key_check": "order", "oversell": "order", "accept_forged": "auth", "provision_anyone": "auth",
    "charge_real_cards": "payment", "bad_pagination": "product", "misses_new": "search", "drop_header": "gateway",
    "accept_foreign_currency": "payment", "short_total": "product", "padded_total": "search",
    "paid_unpublished": "order", "cancel_keeps_reservation": "order", "refund_not_kept": "payment",
    "hold_beyond_stock": "inventory", "me_other_user": "auth", "empty_catalogue": "product",
}
ANY_SERVICE_KINDS = ("no_request_id", "break_trace", "error_on_bad_input")


def test_get_faults_lists_the_contract_faults_and_the_all_target(shop: Shop, stack: StackControl) -> None:
    listing = shop.control.get("/faults").json()
    assert set(NEW_KINDS) | set(ANY_SERVICE_KINDS) <= set(listing["kinds"])
    assert all(listing["kinds"][kind] for kind in NEW_KINDS)
    assert set(listing["services"]) == {*SERVICES, "all"}


def test_contract_faults_apply_only_to_their_service(shop: Shop, stack: StackControl) -> None:
    for kind, owner in NEW_KINDS.items():
        wrong = "search" if owner != "search" else "order"
        answer = shop.set_fault(wrong, kind)
        assert answer.status_code == 422, (wrong, kind, answer.text)
        assert shop.set_fault(owner, kind).status_code == 200, (owner, kind)
    for kind in ANY_SERVICE_KINDS:
        answer = shop.set_fault("all", kind)
        assert answer.status_code == 200 and answer.json()["services"] == list(SERVICES), answer.text
    stack.clear()
    assert stack.active() == {}


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("misroute", {"prefix": "/api/search", "to": "search"}),  # not a misroute
        ("misroute", {"to": "gateway"}),
        ("misroute", {"prefix": "search"}),
        ("overcharge", {"extra_cents": 0}),
        ("overcharge", {"extra_cents": 1.5}),
        ("wrong_total", {"extra_cents": "1"}),
        ("short_total", {"missing": 0}),
        ("padded_total", {"extra": True}),
    ],
)
def test_contract_fault_parameters_are_checked(
    shop: Shop, stack: StackControl, kind: str, params: dict[str, Any]
) -> None:
    answer = shop.set_fault(NEW_KINDS[kind], kind, **params)
    assert answer.status_code == 422 and "error" in answer.json(), answer.text
    assert stack.active() == {}


def test_slow_on_every_service_at_once(shop: Shop, stack: StackControl) -> None:
    applied = shop.set_fault("all", "slow", seconds=0.2)
    assert applied.status_code == 200 and applied.json()["services"] == list(SERVICES), applied.text
    active = stack.active()
    assert {name: active[name]["slow"]["seconds"] for name in active} == {name: 0.2 for name in SERVICES}
    for name in SERVICES:
        assert shop.direct(name, "GET", "/health").elapsed.total_seconds() >= 0.2, name
    assert shop.set_fault("all", "stuck_paid").status_code == 422  # scoped kinds are not set anywhere
    assert shop.set_fault("everything", "slow").status_code == 404
    assert set(stack.active()) == set(SERVICES) and all(set(kinds) == {"slow"} for kinds in stack.active().values())
    assert shop.control.delete("/faults/all/slow").json()["active"] == {}
    shop.set_fault("all", "slow", seconds=0.2)
    assert shop.control.delete("/faults").json()["active"] == {}
    for name in SERVICES:
        assert shop.direct(name, "GET", "/health").elapsed.total_seconds() < 0.2, name


# --- every service: request ids, traces, bad input --------------------------------------------


def test_fault_no_request_id(shop: Shop, stack: StackControl) -> None:
    stack.set_fault("order", "no_request_id")
    answer = shop.direct("order", "GET", "/health", headers={"X-Request-ID": "req-contract-faults"})
    assert answer.status_code == 200 and "x-request-id" not in answer.headers
    assert TRACEPARENT.match(answer.headers["traceparent"])
    assert shop.direct("product", "GET", "/health").headers["x-request-id"]
    assert shop.http.get("/api/orders/ord_x", headers={"X-Request-ID": "via-gw"}).headers["x-request-id"] == "via-gw"
    stack.clear()
    echoed = shop.direct("order", "GET", "/health", headers={"X-Request-ID": "req-contract-faults"})
    assert echoed.headers["x-request-id"] == "req-contract-faults"


@pytest.mark.parametrize("service", ["order", "gateway"])
def test_fault_break_trace(shop: Shop, stack: StackControl, service: str) -> None:
    caller = uuid.uuid4().hex
    headers = {"traceparent": f"00-{caller}-{'2' * 16}-01"}
    path = "/api/products?limit=1" if service == "gateway" else "/health"
    stack.set_fault(service, "break_trace")
    first, second = (shop.direct(service, "GET", path, headers=headers) for _ in range(2))
    assert first.status_code == 200
    assert _trace_id(first) != caller and _trace_id(second) not in (caller, _trace_id(first))
    assert _trace_id(shop.direct("product", "GET", "/health", headers=headers)) == caller
    stack.clear()
    assert _trace_id(shop.direct(service, "GET", path, headers=headers)) == caller


BAD_INPUT: dict[str, tuple[str, str, dict[str, Any]]] = {
    "auth": ("POST", "/api/auth/login", {"content": b"{not json"}),
    "product": ("GET", "/api/products", {"params": {"limit": "0"}}),
    "inventory": ("POST", "/internal/reservations", {"json": {"order_id": "ord_x", "items": "x"}}),
    "order": ("POST", "/api/orders", {"json": {"items": "x"}}),
    "payment": ("POST", "/api/payments", {"json": {"order_id": 3}}),
    "notification": ("POST", "/api/notifications/test", {"json": {"to": 1, "template": "smoke_test"}}),
    "search": ("GET", "/api/search", {"params": {"q": ""}}),
}


@pytest.mark.parametrize("service", sorted(BAD_INPUT))
def test_fault_error_on_bad_input(shop: Shop, buyer: Buyer, stack: StackControl, service: str) -> None:
    method, path, request = BAD_INPUT[service]
    headers = {**buyer.auth, "Idempotency-Key": str(uuid.uuid4())}
    stack.set_fault(service, "error_on_bad_input")
    crashed = shop.direct(service, method, path, headers=headers, **request)
    assert (crashed.status_code, crashed.json()["error"]) == (500, "internal_error"), crashed.text
    if not path.startswith("/internal/"):
        assert shop.http.request(method, path, headers=headers, **request).status_code == 500
    other = "order" if service != "order" else "auth"
    other_method, other_path, other_request = BAD_INPUT[other]
    assert shop.direct(other, other_method, other_path, headers=headers, **other_request).status_code == 422
    stack.clear()
    refused = shop.direct(service, method, path, headers=headers, **request)
    assert refused.status_code == 422 and refused.json()["error"] in ("invalid_body", "invalid_query"), refused.text


def test_fault_error_on_bad_input_keeps_good_input_and_other_refusals(
    shop: Shop, buyer: Buyer, stack: StackControl
) -> None:
    stack.set_fault("order", "error_on_bad_input")
    assert shop.place_order(buyer, shop.sku()).status_code == 201
    unknown = shop.place_order(buyer, "SKU-NOPE")
    assert (unknown.status_code, unknown.json()["error"]) == (422, "unknown_sku")
    no_key = shop.http.post("/api/orders", headers=buyer.auth, json={"items": [{"sku": shop.sku(), "qty": 1}]})
    assert no_key.status_code == 400


def test_fault_error_on_bad_input_at_the_gateway(shop: Shop, buyer: Buyer, stack: StackControl) -> None:
    stack.set_fault("gateway", "error_on_bad_input")
    assert shop.http.post("/api/auth/login", content=b"{not json").status_code == 500
    assert shop.direct("auth", "POST", "/api/auth/login", content=b"{not json").status_code == 422
    assert shop.http.post("/api/auth/login", json={"email": buyer.email, "password": PASSWORD}).status_code == 200
    stack.clear()
    assert shop.http.post("/api/auth/login", content=b"{not json").status_code == 422


# --- gateway ----------------------------------------------------------------------------------


def test_fault_misroute(shop: Shop, stack: StackControl) -> None:
    stack.set_fault("gateway", "misroute")
    wrong = shop.http.get("/api/search", params={"q": "mug"})
    product_answer = shop.direct("product", "GET", "/api/search", params={"q": "mug"})
    assert (wrong.status_code, wrong.json()) == (product_answer.status_code, product_answer.json())
    assert (wrong.status_code, wrong.json()) == (404, {"error": "not_found", "path": "/api/search"})
    assert shop.http.get("/api/search/status").status_code == 404
    assert shop.direct("search", "GET", "/api/search", params={"q": "mug"}).status_code == 200
    assert shop.http.get("/api/products", params={"limit": 1}).status_code == 200
    stack.set_fault("gateway", "misroute", prefix="/api/products", to="search")
    assert shop.http.get("/api/products").status_code == 404
    assert shop.http.get("/api/search", params={"q": "mug"}).status_code == 200
    stack.clear()
    assert shop.http.get("/api/search", params={"q": "mug"}).json()["items"]
    assert shop.http.get("/api/products").json()["items"]


def test_fault_drop_header(shop: Shop, buyer: Buyer, stack: StackControl) -> None:
    stack.set_fault("gateway", "drop_header")  # authorization under /api/orders
    assert shop.http.get("/api/orders/ord_nope", headers=buyer.auth).status_code == 401
    assert shop.direct("order", "GET", "/api/orders/ord_nope", headers=buyer.auth).status_code == 404
    assert shop.http.get("/api/auth/me", headers=buyer.auth).status_code == 200
    stack.set_fault("gateway", "drop_header", prefix="/api/auth/", header="Authorization")
    assert shop.http.get("/api/auth/me", headers=buyer.auth).status_code == 401
    assert shop.http.get("/api/orders/ord_nope", headers=buyer.auth).status_code == 404
    stack.clear()
    assert shop.http.get("/api/auth/me", headers=buyer.auth).status_code == 200


# --- auth -------------------------------------------------------------------------------------


def test_fault_accept_forged(shop: Shop, buyer: Buyer, stack: StackControl) -> None:
    order = shop.new_order(buyer)
    payload, _, signature = buyer.token.partition(".")
    forged = {"Authorization": f"Bearer {payload}.{'A' * len(signature)}"}
    stack.set_fault("auth", "accept_forged")
    me = shop.http.get("/api/auth/me", headers=forged)
    assert me.status_code == 200 and me.json()["id"] == buyer.id
    assert shop.http.get(f"/api/orders/{order['id']}", headers=forged).status_code == 200
    assert shop.http.get("/api/auth/me", headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    no_subject = base64.urlsafe_b64encode(b'{"exp": 4102444800}').decode().rstrip("=")
    crafted = {"Authorization": f"Bearer {no_subject}.{'A' * len(signature)}"}
    assert shop.http.get(f"/api/orders/{order['id']}", headers=crafted).status_code == 401
    stack.clear()
    assert shop.http.get("/api/auth/me", headers=forged).status_code == 401
    assert shop.http.get(f"/api/orders/{order['id']}", headers=forged).status_code == 401


def test_fault_provision_anyone(shop: Shop, stack: StackControl) -> None:
    stack.set_fault("auth", "provision_anyone")
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    created = shop.http.post("/api/auth/users", json={"email": email, "password": PASSWORD})
    assert created.status_code == 201 and created.json()["email"] == email, created.text
    assert shop.http.post("/api/auth/users", json={"email": "x"}).status_code == 422
    stack.clear()
    other = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    assert shop.http.post("/api/auth/users", json={"email": other, "password": PASSWORD}).status_code == 403


# --- product and search -----------------------------------------------------------------------


def test_fault_bad_pagination(shop: Shop, stack: StackControl) -> None:
    stack.set_fault("product", "bad_pagination")
    page = shop.http.get("/api/products", params={"limit": 5}).json()
    assert len(page["items"]) == page["total"] > 5
    assert shop.http.get("/api/products", params={"limit": 0}).status_code == 422
    stack.clear()
    assert len(shop.http.get("/api/products", params={"limit": 5}).json()["items"]) == 5


def test_fault_short_total(shop: Shop, stack: StackControl) -> None:
    catalogue = shop.http.get("/api/products", params={"limit": 100}).json()
    size = len(catalogue["items"])
    assert catalogue["total"] == size < 100, catalogue["total"]
    stack.set_fault("product", "short_total")
    page = shop.http.get("/api/products", params={"limit": 100}).json()
    assert (len(page["items"]), page["total"]) == (size, size - 1)  # the count is below what the page lists
    tail = shop.http.get("/api/products", params={"limit": 100, "offset": size - 2}).json()
    assert (len(tail["items"]), tail["total"]) == (2, size - 1)
    stack.set_fault("product", "short_total", missing=5)
    assert shop.http.get("/api/products", params={"limit": 1}).json()["total"] == size - 5
    stack.clear()
    assert shop.http.get("/api/products", params={"limit": 100}).json()["total"] == size


def test_fault_padded_total(shop: Shop, stack: StackControl) -> None:
    name = shop.http.get("/api/products", params={"limit": 1}).json()["items"][0]["name"]
    healthy = shop.http.get("/api/search", params={"q": name, "limit": 100}).json()
    assert healthy["total"] == len(healthy["items"]) < 100, healthy
    stack.set_fault("search", "padded_total")
    padded = shop.http.get("/api/search", params={"q": name, "limit": 100}).json()
    assert padded["items"] == healthy["items"] and padded["total"] == len(healthy["items"]) + 2, padded
    nothing = shop.http.get("/api/search", params={"q": "polycheckzzz", "limit": 10}).json()
    assert (nothing["items"], nothing["total"]) == ([], 2)
    stack.clear()
    assert shop.http.get("/api/search", params={"q": name, "limit": 100}).json()["total"] == len(healthy["items"])


def test_fault_misses_new(shop: Shop, stack: StackControl) -> None:
    product = shop.http.get("/api/products", params={"limit": 1}).json()["items"][0]
    stack.set_fault("search", "misses_new")
    found = shop.http.get("/api/search", params={"q": product["name"], "limit": 50}).json()
    assert found["items"] and product["id"] not in [item["id"] for item in found["items"]]
    stack.clear()
    found = shop.http.get("/api/search", params={"q": product["name"], "limit": 50}).json()
    assert found["items"][0]["id"] == product["id"]


# --- inventory --------------------------------------------------------------------------------


def test_fault_no_stock_move(shop: Shop, buyer: Buyer, stack: StackControl) -> None:
    sku = shop.sku(10)
    before = shop.stock(sku)
    stack.set_fault("inventory", "no_stock_move")
    order, _ = _confirmed_order(shop, buyer, sku, qty=2)
    assert shop.reservation(order["reservation_id"])["status"] == "confirmed"
    assert shop.stock(sku) == before  # confirmed, and the stock never moved
    assert _cancel(shop, buyer, order["id"]).status_code == 200
    assert shop.stock(sku) == before  # nor does it come back twice
    stack.clear()
    order, _ = _confirmed_order(shop, buyer, sku, qty=1)
    after = shop.stock(sku)
    assert (after["available"], after["reserved"]) == (before["available"] - 1, before["reserved"])
    _cancel(shop, buyer, order["id"])
    assert shop.stock(sku) == before


# --- order ------------------------------------------------------------------------------------


def test_fault_wrong_total(shop: Shop, buyer: Buyer, stack: StackControl) -> None:
    product = shop.http.get("/api/products", params={"limit": 100}).json()["items"][6]
    stack.set_fault("order", "wrong_total", extra_cents=7)
    order = shop.place_order(buyer, product["sku"], qty=2).json()
    assert order["total_cents"] == 2 * product["price_cents"] + 7
    assert shop.order(buyer, order["id"])["total_cents"] == order["total_cents"]
    stack.set_fault("order", "wrong_total")
    assert shop.place_order(buyer, product["sku"]).json()["total_cents"] == product["price_cents"] + 1
    stack.clear()
    assert shop.place_order(buyer, product["sku"], qty=2).json()["total_cents"] == 2 * product["price_cents"]


def test_fault_cancel_keeps_payment(shop: Shop, buyer: Buyer, stack: StackControl) -> None:
    sku = shop.sku(7)
    before = shop.stock(sku)
    stack.set_fault("order", "cancel_keeps_payment")
    order, payment = _confirmed_order(shop, buyer, sku)
    cancelled = _cancel(shop, buyer, order["id"])
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert shop.reservation(order["reservation_id"])["status"] == "released"
    assert shop.stock(sku) == before
    shop.wait_quiet()
    assert _payment(shop, buyer, payment["id"]).json()["status"] == "succeeded"
    assert shop.order(buyer, order["id"])["status"] == "cancelled"
    stack.clear()
    assert shop.http.post(f"/api/payments/{payment['id']}/refund", headers=buyer.auth).json()["status"] == "refunded"
    order, payment = _confirmed_order(shop, buyer, sku)
    assert _cancel(shop, buyer, order["id"]).json()["status"] == "cancelled"
    assert _payment(shop, buyer, payment["id"]).json()["status"] == "refunded"


def test_fault_leak_orders(shop: Shop, buyer: Buyer, stack: StackControl) -> None:
    order = shop.new_order(buyer)
    other = shop.new_buyer()
    stack.set_fault("order", "leak_orders")
    leaked = shop.http.get(f"/api/orders/{order['id']}", headers=other.auth)
    assert leaked.status_code == 200 and leaked.json()["id"] == order["id"]
    assert _cancel(shop, other, order["id"]).status_code == 404  # readable, not writable
    assert shop.http.get(f"/api/orders/{order['id']}").status_code == 401
    stack.clear()
    assert shop.http.get(f"/api/orders/{order['id']}", headers=other.auth).status_code == 404


def test_fault_no_idempotency_key_check(shop: Shop, buyer: Buyer, stack: StackControl) -> None:
    body = {"items": [{"sku": shop.sku(), "qty": 1}]}
    stack.set_fault("order", "no_idempotency_key_check")
    first, second = (shop.http.post("/api/orders", headers=buyer.auth, json=body) for _ in range(2))
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]
    stack.clear()
    refused = shop.http.post("/api/orders", headers=buyer.auth, json=body)
    assert (refused.status_code, refused.json()["error"]) == (400, "idempotency_key_required")


def test_fault_oversell(shop: Shop, buyer: Buyer, stack: StackControl) -> None:
    sku = shop.sku(11)
    before = shop.stock(sku)
    qty = before["available"] + 1
    assert qty <= 1000, before  # an order line takes up to 1000
    stack.set_fault("order", "oversell")
    placed = shop.place_order(buyer, sku, qty)
    assert placed.status_code == 201, placed.text
    assert placed.json()["reservation_id"] is None  # inventory's 409 ignored: nothing held
    assert shop.stock(sku) == before
    assert _cancel(shop, buyer, placed.json()["id"]).json()["status"] == "cancelled"
    assert shop.stock(sku) == before
    stack.clear()
    short = shop.place_order(buyer, sku, qty)
    assert (short.status_code, short.json()["error"]) == (409, "insufficient_stock")


# --- payment ----------------------------------------------------------------------------------


def test_fault_overcharge(shop: Shop, buyer: Buyer, stack: StackControl) -> None:
    order = shop.new_order(buyer)
    stack.set_fault("payment", "overcharge", extra_cents=100)
    paid = shop.pay(buyer, order)
    assert paid.status_code == 201 and paid.json()["status"] == "succeeded"
    assert paid.json()["amount_cents"] == order["total_cents"] + 100
    assert _payment(shop, buyer, paid.json()["id"]).json()["amount_cents"] == order["total_cents"] + 100
    stack.clear()
    order = shop.new_order(buyer)
    assert shop.pay(buyer, order).json()["amount_cents"] == order["total_cents"]


def test_fault_accept_mismatch(shop: Shop, buyer: Buyer, stack: StackControl) -> None:
    stack.set_fault("payment", "accept_mismatch")
    order = shop.new_order(buyer)
    more = shop.pay(buyer, order, amount_cents=order["total_cents"] + 1)
    assert more.status_code == 201 and more.json()["amount_cents"] == order["total_cents"] + 1, more.text
    assert shop.pay(buyer, shop.new_order(buyer), currency="USD").status_code == 201
    stack.clear()
    order = shop.new_order(buyer)
    refused = shop.pay(buyer, order, amount_cents=order["total_cents"] + 1)
    assert (refused.status_code, refused.json()["error"]) == (422, "amount_mismatch")


def test_fault_accept_foreign_currency(shop: Shop, buyer: Buyer, stack: StackControl) -> None:
    stack.set_fault("payment", "accept_foreign_currency")
    order = shop.new_order(buyer)
    foreign = shop.pay(buyer, order, currency="USD")
    assert foreign.status_code == 201 and foreign.json()["currency"] == "USD", foreign.text
    order = shop.new_order(buyer)
    more = shop.pay(buyer, order, amount_cents=order["total_cents"] + 1)  # only the currency goes unchecked
    assert (more.status_code, more.json()["error"]) == (422, "amount_mismatch"), more.text
    stack.clear()
    refused = shop.pay(buyer, order, currency="USD")
    assert (refused.status_code, refused.json()["error"]) == (422, "amount_mismatch"), refused.text
    assert shop.pay(buyer, order).status_code == 201


def test_fault_leak_payments(shop: Shop, buyer: Buyer, stack: StackControl) -> None:
    payment = shop.pay(buyer, shop.new_order(buyer)).json()
    other = shop.new_buyer()
    stack.set_fault("payment", "leak_payments")
    leaked = _payment(shop, other, payment["id"])
    assert leaked.status_code == 200 and leaked.json()["id"] == payment["id"]
    assert shop.http.post(f"/api/payments/{payment['id']}/refund", headers=other.auth).status_code == 404
    stack.clear()
    assert _payment(shop, other, payment["id"]).status_code == 404


def test_fault_charge_real_cards(shop: Shop, buyer: Buyer, stack: StackControl) -> None:
    stack.set_fault("payment", "charge_real_cards")
    charged = shop.pay(buyer, shop.new_order(buyer), token="tok_visa")
    assert charged.status_code == 201 and charged.json()["status"] == "succeeded", charged.text
    stack.clear()
    refused = shop.pay(buyer, shop.new_order(buyer), token="tok_visa")
    assert (refused.status_code, refused.json()["error"]) == (422, "sandbox_token_required")


# --- notification -----------------------------------------------------------------------------


def test_fault_outbox_unrestricted(shop: Shop, stack: StackControl) -> None:
    stack.set_fault("notification", "outbox_unrestricted")
    leaked = shop.http.get("/api/notifications/outbox", params={"to": "ada@example.com"})
    assert leaked.status_code == 200 and isinstance(leaked.json()["messages"], list)
    stack.clear()
    assert shop.http.get("/api/notifications/outbox", params={"to": "ada@example.com"}).status_code == 403


def _confirmations(shop: Shop, buyer: Buyer, order_id: str) -> list[dict[str, Any]]:
    return [m for m in shop.outbox(buyer.email) if m["template"] == "order_confirmed" and m["order_id"] == order_id]


def _sent_at(message: dict[str, Any]) -> float:
    return datetime.fromisoformat(message["sent_at"]).timestamp()


def test_fault_duplicate_confirmation(shop: Shop, buyer: Buyer, stack: StackControl) -> None:
    stack.set_fault("notification", "duplicate_confirmation")
    order, _ = _confirmed_order(shop, buyer, shop.sku(8))
    messages = poll(lambda: _confirmations(shop, buyer, order["id"]), lambda found: len(found) == 2,
                    timeout=ASYNC_TIMEOUT, interval=0.05, what="two order_confirmed messages")
    assert messages[0]["id"] != messages[1]["id"]
    assert 0.3 <= _sent_at(messages[1]) - _sent_at(messages[0]) <= 0.6
    stack.clear()
    order, _ = _confirmed_order(shop, buyer, shop.sku(8))
    first = poll(lambda: _confirmations(shop, buyer, order["id"]), bool, timeout=ASYNC_TIMEOUT, interval=0.05,
                 what="the order_confirmed message")
    poll(lambda: time.time() - _sent_at(first[0]), lambda age: age > 0.7, timeout=ASYNC_TIMEOUT, interval=0.05,
         what="the window of a duplicate to pass")
    assert len(_confirmations(shop, buyer, order["id"])) == 1
