"""A check's view of the local stack's gateway, for the self-tests of the stack: buyers, orders, payments."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from polycheck.doubles.localstack import LocalStack
from polycheck.core.polling import poll

SYNTHETIC = "synthetic.polyshop.test"
ASYNC_TIMEOUT = 5.0
PASSWORD = "correct horse battery staple"


@dataclass
class Buyer:
    id: str
    email: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Shop:
    """The gateway of the session's stack, as a check would use it."""

    def __init__(self, stack: LocalStack) -> None:
        self.info = stack.info
        self.http = httpx.Client(base_url=stack.info.gateway, timeout=5.0, headers={"X-Synthetic": "true"})
        self.control = httpx.Client(base_url=stack.info.control, timeout=5.0)

    def close(self) -> None:
        self.http.close()
        self.control.close()

    def new_buyer(self) -> Buyer:
        email = f"buyer-{uuid.uuid4().hex[:10]}@{SYNTHETIC}"
        created = self.http.post("/api/auth/users", json={"email": email, "password": PASSWORD})
        assert created.status_code == 201, created.text
        login = self.http.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        return Buyer(created.json()["id"], email, login.json()["access_token"])

    def sku(self, index: int = 0) -> str:
        return self.http.get("/api/products", params={"limit": 100}).json()["items"][index]["sku"]

    def stock(self, sku: str) -> dict[str, Any]:
        return self.http.get(f"/api/inventory/{sku}").json()

    def reservation(self, reservation_id: str) -> dict[str, Any]:
        return self.http.get(f"/api/inventory/reservations/{reservation_id}").json()

    def order(self, buyer: Buyer, order_id: str) -> dict[str, Any]:
        return self.http.get(f"/api/orders/{order_id}", headers=buyer.auth).json()

    def place_order(self, buyer: Buyer, sku: str, qty: int = 1, key: str | None = None) -> httpx.Response:
        headers = {**buyer.auth, "Idempotency-Key": key or str(uuid.uuid4())}
        return self.http.post("/api/orders", headers=headers, json={"items": [{"sku": sku, "qty": qty}]})

    def new_order(self, buyer: Buyer, qty: int = 1, sku_index: int = 0) -> dict[str, Any]:
        placed = self.place_order(buyer, self.sku(sku_index), qty)
        assert placed.status_code == 201, placed.text
        return placed.json()

    def pay(
        self, buyer: Buyer, order: dict[str, Any], token: str = "tok_sandbox_visa", **override: Any
    ) -> httpx.Response:
        body = {"order_id": order["id"], "amount_cents": order["total_cents"], "currency": order["currency"],
                "card_token": token, **override}
        headers = {**buyer.auth, "Idempotency-Key": str(uuid.uuid4())}
        return self.http.post("/api/payments", headers=headers, json=body)

    def outbox(self, email: str) -> list[dict[str, Any]]:
        answer = self.http.get("/api/notifications/outbox", params={"to": email})
        assert answer.status_code == 200, answer.text
        return answer.json()["messages"]

    def wait_for_order(self, buyer: Buyer, order_id: str, status: str) -> dict[str, Any]:
        return poll(
            lambda: self.order(buyer, order_id),
            lambda o: o["status"] == status,
            timeout=ASYNC_TIMEOUT,
            interval=0.05,
            max_interval=0.2,
            what=f"order {order_id} to be {status}",
        )

    def wait_quiet(self) -> None:
        """Wait until every published event has been processed by every consumer group."""
        poll(
            lambda: self.control.get("/events").json(),
            lambda bus: bus["pending"] == 0,
            timeout=ASYNC_TIMEOUT,
            interval=0.05,
            max_interval=0.2,
            what="the event bus to be quiet",
        )

    def set_fault(self, service: str, kind: str, **params: Any) -> httpx.Response:
        return self.control.put(f"/faults/{service}/{kind}", json=params)

    def metric(self, of: str, family: str, /, **labels: str) -> float | None:
        """The value of one sample of a family in the /metrics of service `of`, or None when absent."""
        text = httpx.get(self.info.services[of] + "/metrics", timeout=5.0).text
        for metric in text_string_to_metric_families(text):
            for sample in metric.samples:
                if sample.name == family and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
        return None

    def direct(self, service: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request straight to one service's own (cluster-internal) URL, past the gateway."""
        return httpx.request(method, self.info.services[service] + path, timeout=5.0, **kwargs)
