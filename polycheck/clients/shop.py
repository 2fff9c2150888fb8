"""The PolyShop public API as the business-flow checks use it (polyshop-api.md), through the gateway."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import httpx

from polycheck.core.failures import check_failed
from polycheck.clients.http import Exchange, ServiceClient, exchange_of
from polycheck.core.redact import register_secret


@dataclass(frozen=True)
class Account:
    """A synthetic account; the password never shows in a repr."""

    email: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        register_secret(self.password)  # never in a report, an attachment, a trace or a file


def new_idempotency_key() -> str:
    return str(uuid.uuid4())


def payment_body(order: dict[str, Any], card_token: str) -> dict[str, Any]:
    """The contract's payment of an order: its amount, its currency, a card token."""
    return {"order_id": order["id"], "amount_cents": order["total_cents"], "currency": order["currency"], "card_token": card_token}


class ShopApi:
    """Typed calls to the PolyShop API; every call fails the check with the exchange when the answer is off."""

    def __init__(self, client: ServiceClient, token: str | None = None) -> None:
        self.client = client
        self.token = token
        self.last: Exchange | None = None  # the latest answer, whose service is blamed when its body is off
        self.seen: dict[str, dict[str, Any]] = {}  # order, payment and reservation id -> what was last read of it

    def signed_in(self, token: str) -> ShopApi:
        register_secret(token)
        return ShopApi(self.client, token)

    # -- plumbing -------------------------------------------------------------------------------
    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def call(
        self,
        method: str,
        path: str,
        expect: int | Collection[int],
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """(status, JSON body) of one call that must answer one of `expect`."""
        __tracebackhide__ = True
        response = self.client.request(
            method, path, expect=expect, json_body=json_body, params=params, headers=self._headers(headers)
        )
        self.last = exchange_of(response)
        return response.status_code, self.client.json_of(response)

    def raw(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A call whose answer the check judges itself (e.g. an expected 401)."""
        __tracebackhide__ = True
        headers = kwargs.pop("headers", None)
        return self.client.request(method, path, headers=self._headers(headers), **kwargs)

    def require(self, body: Any, keys: Collection[str], what: str) -> dict[str, Any]:
        """The body as a dict that has `keys`, else the check fails naming what is missing and who answered it."""
        __tracebackhide__ = True
        if not isinstance(body, dict) or not set(keys) <= set(body):
            missing = sorted(set(keys) - set(body)) if isinstance(body, dict) else list(keys)
            where = f"{self.last.line}: " if self.last else ""
            check_failed(f"{where}{what} lacks {', '.join(missing)} (contract: polyshop-api.md): {body!r}",
                         culprit=self.last.answered_by if self.last else None)
        return body

    def _saw(self, body: dict[str, Any]) -> dict[str, Any]:
        """Remember the latest of an order, payment or reservation (the clean-up skips what already reads final)."""
        if isinstance(body, dict) and isinstance(body.get("id"), str):
            self.seen[body["id"]] = {**self.seen.get(body["id"], {}), **body}
        return body

    # -- auth -----------------------------------------------------------------------------------
    def provision(self, account: Account) -> int:
        status, _ = self.call(
            "POST", "/api/auth/users", (201, 409), json_body={"email": account.email, "password": account.password}
        )
        return status

    def login(self, account: Account) -> dict[str, Any]:
        _, body = self.call("POST", "/api/auth/login", 200, json_body={"email": account.email, "password": account.password})
        if isinstance(body, dict) and isinstance(body.get("access_token"), str):
            register_secret(body["access_token"])
        return self.require(body, ("access_token", "token_type", "expires_in"), "the login answer")

    def me(self) -> dict[str, Any]:
        _, body = self.call("GET", "/api/auth/me", 200)
        return self.require(body, ("id", "email", "synthetic"), "the /me answer")

    # -- catalogue and stock --------------------------------------------------------------------
    def products(self, limit: int = 100, offset: int = 0) -> dict[str, Any]:
        _, body = self.call("GET", "/api/products", 200, params={"limit": limit, "offset": offset})
        return self.require(body, ("items", "total"), "the product list")

    def stock(self, sku: str) -> dict[str, Any]:
        _, body = self.call("GET", f"/api/inventory/{sku}", 200)
        return self.require(body, ("sku", "available", "reserved"), f"the stock of {sku}")

    def reservation(self, reservation_id: str) -> dict[str, Any]:
        _, body = self.call("GET", f"/api/inventory/reservations/{reservation_id}", 200)
        return self._saw(self.require(body, ("id", "order_id", "sku", "qty", "status"), f"reservation {reservation_id}"))

    # -- orders and payments --------------------------------------------------------------------
    def create_order(self, items: list[dict[str, Any]], key: str, expect: Collection[int] = (201,)) -> tuple[int, dict[str, Any]]:
        status, body = self.call("POST", "/api/orders", expect, json_body={"items": items}, headers={"Idempotency-Key": key})
        return status, self._saw(self.require(body, ("id", "status", "total_cents", "currency"), "the created order"))

    def order(self, order_id: str) -> dict[str, Any]:
        _, body = self.call("GET", f"/api/orders/{order_id}", 200)
        return self._saw(self.require(body, ("id", "status"), f"order {order_id}"))

    def cancel(self, order_id: str) -> dict[str, Any]:
        _, body = self.call("POST", f"/api/orders/{order_id}/cancel", 200)
        return self._saw(self.require(body, ("id", "status"), f"the cancellation of {order_id}"))

    def pay(self, order: dict[str, Any], card_token: str, key: str) -> dict[str, Any]:
        _, body = self.call("POST", "/api/payments", 201, json_body=payment_body(order, card_token), headers={"Idempotency-Key": key})
        return self._saw(self.require(body, ("id", "order_id", "status", "amount_cents"), "the payment"))

    def payment(self, payment_id: str) -> dict[str, Any]:
        _, body = self.call("GET", f"/api/payments/{payment_id}", 200)
        return self._saw(self.require(body, ("id", "status"), f"payment {payment_id}"))

    def refund(self, payment_id: str) -> dict[str, Any]:
        _, body = self.call("POST", f"/api/payments/{payment_id}/refund", 200)
        return self._saw(self.require(body, ("id", "status"), f"the refund of {payment_id}"))

    # -- search and notification ----------------------------------------------------------------
    def search(self, query: str, limit: int = 20) -> dict[str, Any]:
        _, body = self.call("GET", "/api/search", 200, params={"q": query, "limit": limit})
        return self.require(body, ("items", "total"), f"the search for {query!r}")

    def search_status(self) -> dict[str, Any]:
        _, body = self.call("GET", "/api/search/status", 200)
        return self.require(body, ("documents", "last_indexed_at", "lag_seconds"), "the search index status")

    def send_test_email(self, to: str) -> str:
        _, body = self.call("POST", "/api/notifications/test", 202, json_body={"to": to, "template": "smoke_test"})
        return str(self.require(body, ("id",), "the test email answer")["id"])

    def outbox(self, to: str) -> list[dict[str, Any]]:
        _, body = self.call("GET", "/api/notifications/outbox", 200, params={"to": to})
        messages = self.require(body, ("messages",), f"the outbox of {to}")["messages"]
        if not isinstance(messages, list):
            check_failed(f"the outbox of {to}: 'messages' is not a list: {messages!r}", culprit="notification")
        return messages
