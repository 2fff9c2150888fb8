"""The local stack's data, one part per service: each service reads and writes only its own part.

Services reach each other's data only over HTTP (`stack.peers`) or through events (`stack.events`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, UTC
from typing import Any, Literal

from faker import Faker

CURRENCY = "EUR"

ReservationStatus = Literal["held", "confirmed", "released"]
OrderStatus = Literal["pending_payment", "paid", "confirmed", "payment_failed", "cancelled"]
PaymentStatus = Literal["succeeded", "declined", "refunded"]


def iso_utc(epoch: float) -> str:
    """An epoch time as ISO-8601 UTC with milliseconds (`2026-11-27T10:00:00.123+00:00`)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


@dataclass
class Product:
    id: str
    sku: str
    name: str
    price_cents: int
    currency: str = CURRENCY

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sku": self.sku,
            "name": self.name,
            "price_cents": self.price_cents,
            "currency": self.currency,
        }


@dataclass
class Stock:
    sku: str
    available: int
    reserved: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"sku": self.sku, "available": self.available, "reserved": self.reserved}


@dataclass
class User:
    id: str
    email: str
    password: str
    synthetic: bool


@dataclass(frozen=True)
class Line:
    """One SKU and quantity of an order or a reservation."""

    sku: str
    qty: int

    def as_json(self) -> dict[str, Any]:
        return {"sku": self.sku, "qty": self.qty}


@dataclass
class Reservation:
    """Stock held for one order; `sku`/`qty` in its JSON are the first line, `items` lists them all."""

    id: str
    order_id: str
    lines: list[Line]
    status: ReservationStatus = "held"
    updated_at: float = field(default_factory=time.time)

    def as_json(self) -> dict[str, Any]:
        first = self.lines[0]
        return {
            "id": self.id,
            "order_id": self.order_id,
            "sku": first.sku,
            "qty": first.qty,
            "status": self.status,
            "items": [line.as_json() for line in self.lines],
            "updated_at": iso_utc(self.updated_at),
        }


@dataclass
class Order:
    id: str
    user_id: str
    email: str
    lines: list[Line]
    unit_prices: dict[str, int]
    total_cents: int
    reservation_id: str
    synthetic: bool
    currency: str = CURRENCY
    status: OrderStatus = "pending_payment"
    payment_id: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "total_cents": self.total_cents,
            "currency": self.currency,
            "items": [{**line.as_json(), "unit_price_cents": self.unit_prices[line.sku]} for line in self.lines],
            "payment_id": self.payment_id,
            "reservation_id": self.reservation_id,
            "created_at": iso_utc(self.created_at),
            "updated_at": iso_utc(self.updated_at),
        }

    def internal_json(self) -> dict[str, Any]:
        """What other services may learn about the order (cluster-internal API)."""
        return {**self.as_json(), "user_id": self.user_id}


@dataclass
class Payment:
    id: str
    order_id: str
    user_id: str
    amount_cents: int
    currency: str
    status: PaymentStatus
    card_brand: str
    synthetic: bool
    created_at: float = field(default_factory=time.time)
    refunded_at: float | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "order_id": self.order_id,
            "status": self.status,
            "amount_cents": self.amount_cents,
            "currency": self.currency,
            "card_brand": self.card_brand,
            "created_at": iso_utc(self.created_at),
        }
        if self.refunded_at is not None:
            body["refunded_at"] = iso_utc(self.refunded_at)
        return body


@dataclass
class OutboxMessage:
    id: str
    to: str
    template: str
    subject: str
    order_id: str | None
    sent_at: float

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "to": self.to,
            "template": self.template,
            "subject": self.subject,
            "order_id": self.order_id,
            "sent_at": iso_utc(self.sent_at),
        }


@dataclass
class SearchDocument:
    id: str
    sku: str
    name: str
    terms: frozenset[str]


@dataclass
class AuthData:
    users: dict[str, User] = field(default_factory=dict)  # by lower-cased email


@dataclass
class CatalogueData:
    products: dict[str, Product] = field(default_factory=dict)  # by id

    def by_sku(self, sku: str) -> Product | None:
        return next((p for p in self.products.values() if p.sku == sku), None)


@dataclass
class InventoryData:
    stock: dict[str, Stock] = field(default_factory=dict)  # by sku
    reservations: dict[str, Reservation] = field(default_factory=dict)
    by_order: dict[str, str] = field(default_factory=dict)  # order id -> reservation id


@dataclass
class OrderData:
    orders: dict[str, Order] = field(default_factory=dict)
    # (user id, Idempotency-Key) -> (order id, body fingerprint)
    idempotency: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    key_locks: defaultdict[tuple[str, str], asyncio.Lock] = field(default_factory=lambda: defaultdict(asyncio.Lock))


@dataclass
class PaymentData:
    payments: dict[str, Payment] = field(default_factory=dict)
    # (user id, Idempotency-Key) -> (payment id, body fingerprint)
    idempotency: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    by_order: dict[str, str] = field(default_factory=dict)  # order id -> payment id
    key_locks: defaultdict[tuple[str, str], asyncio.Lock] = field(default_factory=lambda: defaultdict(asyncio.Lock))


@dataclass
class NotificationData:
    outbox: list[OutboxMessage] = field(default_factory=list)  # synthetic recipients: kept, never mailed
    smtp_relay: list[OutboxMessage] = field(default_factory=list)  # real recipients: handed to SMTP
    sent_keys: set[str] = field(default_factory=set)  # de-duplication of deliveries
    dropped: int = 0


@dataclass
class SearchData:
    documents: dict[str, SearchDocument] = field(default_factory=dict)  # by product id
    buffer: dict[str, SearchDocument] = field(default_factory=dict)  # consumed, not yet refreshed into the index
    buffered_since: dict[str, float] = field(default_factory=dict)  # product id -> when its change was published
    last_indexed_at: float | None = None
    generation: int = 0  # bumped by every refresh that changed the index


@dataclass
class Store:
    """Everything the seven business services keep, one attribute per owning service."""

    auth: AuthData = field(default_factory=AuthData)
    catalogue: CatalogueData = field(default_factory=CatalogueData)
    inventory: InventoryData = field(default_factory=InventoryData)
    orders: OrderData = field(default_factory=OrderData)
    payments: PaymentData = field(default_factory=PaymentData)
    notifications: NotificationData = field(default_factory=NotificationData)
    search: SearchData = field(default_factory=SearchData)


ADJECTIVES = ("Merino", "Walnut", "Ceramic", "Linen", "Copper", "Oak", "Canvas", "Enamel", "Bamboo", "Wool")
NOUNS = ("Scarf", "Desk Lamp", "Mug", "Backpack", "Notebook", "Teapot", "Blanket", "Chair", "Kettle", "Tote Bag")


def seed_catalogue(store: Store, count: int = 40, seed: int = 7) -> None:
    """Fill the catalogue and stock with realistic, reproducible products."""
    fake = Faker()
    fake.seed_instance(seed)
    rng = random.Random(seed)
    for index in range(count):
        name = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {fake.last_name()}"
        sku = f"SKU-{1000 + index}"
        product = Product(id=f"prd_{index + 1:04d}", sku=sku, name=name, price_cents=rng.randrange(499, 19999, 100))
        store.catalogue.products[product.id] = product
        store.inventory.stock[sku] = Stock(sku=sku, available=rng.randrange(200, 1000))
