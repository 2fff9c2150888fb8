"""The local stack's data: users, catalogue, stock, orders, payments, outbox, search index."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from faker import Faker

CURRENCY = "EUR"


@dataclass
class Product:
    id: str
    sku: str
    name: str
    price_cents: int
    currency: str = CURRENCY

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "sku": self.sku, "name": self.name, "price_cents": self.price_cents, "currency": self.currency}


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


@dataclass
class Store:
    """Everything the eight services keep, in one process; each service touches only its own part."""

    products: dict[str, Product] = field(default_factory=dict)
    stock: dict[str, Stock] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)  # by lower-cased email
    outbox: list[dict[str, Any]] = field(default_factory=list)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    reservations: dict[str, dict[str, Any]] = field(default_factory=dict)


ADJECTIVES = ("Merino", "Walnut", "Ceramic", "Linen", "Copper", "Oak", "Canvas", "Enamel", "Bamboo", "Wool")
NOUNS = ("Scarf", "Desk Lamp", "Mug", "Backpack", "Notebook", "Teapot", "Blanket", "Chair", "Kettle", "Tote Bag")


def seed_catalogue(store: Store, count: int = 40, seed: int = 7) -> None:
    """Fill the catalogue and stock with realistic, reproducible products."""
    fake = Faker()
    Faker.seed(seed)
    rng = random.Random(seed)
    for index in range(count):
        name = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {fake.last_name()}"
        sku = f"SKU-{1000 + index}"
        product = Product(id=f"prd_{index + 1:04d}", sku=sku, name=name, price_cents=rng.randrange(499, 19999, 100))
        store.products[product.id] = product
        store.stock[sku] = Stock(sku=sku, available=rng.randrange(200, 1000))
