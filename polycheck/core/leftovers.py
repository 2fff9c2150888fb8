"""The journal of synthetic data a run creates, written before each create, and the sweeper of what dead runs left.

A run killed at its deadline (the CronJob's activeDeadlineSeconds, a SIGKILL, a lost node) never reaches the
finaliser that cancels its orders and refunds its payments. So `OrderLedger` writes an *intent* to the journal
before it sends each create (keyed by the request's Idempotency-Key), the created id once the answer comes, and
*cleaned* once the finaliser has cancelled or refunded it. The journal is a JSON-lines file that outlives the
pod: a local file under reports/ for local runs, a file on the CronJob's volume in the cluster.

`sweep` (`python -m polycheck cleanup`) finds every entry not cleaned and older than a threshold and cleans it:

- a payment with a known id is refunded unless it reads refunded or declined;
- a payment whose answer never came is asked for again with its own Idempotency-Key and body: the contract
  returns the same payment when the first request was taken, and the sweeper refunds what comes back;
- an order with a known id is cancelled (which also releases its stock and refunds its payment);
- an order whose answer never came is replayed with its Idempotency-Key the same way, then cancelled.

Nothing is called cleaned without having read its end state back: the payment reads refunded (or declined), the
order cancelled and its reservation released. What cannot be read back is *unverified*, reported by key, SKU and
quantity: a replay that creates a new order (201, not the 200 of a known key) proves the shop recorded no order
for the lost create, but it may have kept that create's hold, which no API lists. `cleanup` then exits 3.

Payments go first, while their orders are still open. Every call is idempotent, so a sweep that dies halfway is
simply run again.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

ORDER, PAYMENT = "order", "payment"
SETTLED = ("refunded", "declined")
ERRORS = (Exception, pytest.fail.Exception)


@dataclass
class Entry:
    """Everything the journal knows of one create, folded from its lines."""

    key: str
    kind: str
    at: float
    run_id: str = ""
    env: str = ""
    email: str = ""
    password: str | None = None  # only for an account the run provisioned itself (never the env's secrets)
    body: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    cleaned: bool = False

    def describe(self) -> str:
        what = f"{self.kind} {self.id}" if self.id else f"{self.kind} (Idempotency-Key {self.key}, no answer recorded)"
        return f"{what} of run {self.run_id or '?'} by {self.email}"


class Journal:
    """An append-only JSON-lines file, locked for each write; `entries()` folds it back into one Entry per key."""

    def __init__(self, path: Path, *, run_id: str = "", env: str = "") -> None:
        self.path, self.run_id, self.env = Path(path), run_id, env

    @contextmanager
    def _locked(self, mode: str) -> Iterator[IO[str]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, mode) as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield handle
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _append(self, line: dict[str, Any]) -> None:
        with self._locked("a") as handle:
            handle.write(json.dumps(line, separators=(",", ":")) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def intend(self, key: str, kind: str, email: str, body: dict[str, Any], password: str | None = None) -> None:
        """Before the create is sent: what will be created, by whom, with which key."""
        line: dict[str, Any] = {"op": "intent", "key": key, "kind": kind, "at": time.time(), "run_id": self.run_id,
                                "env": self.env, "email": email, "body": body}
        if password is not None:
            line["password"] = password
        self._append(line)

    def created(self, key: str, object_id: str) -> None:
        self._append({"op": "created", "key": key, "id": object_id})

    def cleaned(self, key: str) -> None:
        self._append({"op": "cleaned", "key": key})

    def entries(self) -> list[Entry]:
        if not self.path.exists():
            return []
        with self._locked("r") as handle:
            lines = handle.read().splitlines()
        return list(fold(lines).values())

    def compact(self, keep_cleaned_seconds: float = 0.0, now: float | None = None) -> int:
        """Drop the lines of every cleaned entry older than `keep_cleaned_seconds` (in place, under the lock: the
        younger ones stay for the later runs that look back at them); how many entries were dropped."""
        if not self.path.exists():
            return 0
        now = time.time() if now is None else now
        with self._locked("r+") as handle:
            lines = handle.read().splitlines()
            done = {key for key, entry in fold(lines).items() if entry.cleaned and now - entry.at >= keep_cleaned_seconds}
            kept = [line for line in lines if _key_of(line) not in done]
            handle.seek(0)
            handle.truncate()
            handle.write("".join(line + "\n" for line in kept))
            handle.flush()
            os.fsync(handle.fileno())
        return len(done)


def _key_of(line: str) -> str | None:
    try:
        return str(json.loads(line).get("key"))
    except (ValueError, AttributeError):
        return None


def fold(lines: list[str]) -> dict[str, Entry]:
    """One Entry per key, from the journal's lines in order (a torn last line is ignored)."""
    entries: dict[str, Entry] = {}
    for text in lines:
        try:
            line = json.loads(text)
        except ValueError:
            continue
        key, op = str(line.get("key", "")), line.get("op")
        if op == "intent":
            entries[key] = Entry(key, str(line.get("kind")), float(line.get("at", 0)), str(line.get("run_id", "")),
                                 str(line.get("env", "")), str(line.get("email", "")), line.get("password"),
                                 dict(line.get("body") or {}))
        elif key in entries and op == "created":
            entries[key].id = str(line.get("id"))
        elif key in entries and op == "cleaned":
            entries[key].cleaned = True
    return entries


# -- the sweeper -------------------------------------------------------------------------------------------------


@dataclass
class SweepLine:
    entry: Entry
    outcome: str  # cleaned | would | failed | unverified
    detail: str


def pending(journal: Journal, older_than: float, now: float | None = None) -> list[Entry]:
    """Entries not cleaned whose intent is at least `older_than` seconds old: those of runs that are over."""
    cutoff = (time.time() if now is None else now) - older_than
    return [e for e in journal.entries() if not e.cleaned and e.at <= cutoff]


def sweep(journal: Journal, entries: list[Entry], sign_in: Callable[[Entry], Any], *, dry_run: bool = False,
          keep_cleaned_seconds: float = 0.0) -> list[SweepLine]:
    """Clean each entry (payments first); each outcome as a line. `sign_in(entry)` gives a ShopApi for its account."""
    lines: list[SweepLine] = []
    shops: dict[str, Any] = {}
    for entry in sorted(entries, key=lambda e: (e.kind != PAYMENT, e.at)):
        if dry_run:
            lines.append(SweepLine(entry, "would", _plan(entry)))
            continue
        try:
            if entry.email not in shops:
                shops[entry.email] = sign_in(entry)
            detail = (_clean_payment if entry.kind == PAYMENT else _clean_order)(shops[entry.email], entry)
        except Unverified as exc:
            journal.cleaned(entry.key)  # what could be done is done (a replay again would only make another order)
            lines.append(SweepLine(entry, "unverified", str(exc)))
            continue
        except ERRORS as exc:  # the API client fails a call with pytest's Failed, no Exception subclass
            text = str(getattr(exc, "msg", None) or exc).strip().splitlines() or [type(exc).__name__]
            lines.append(SweepLine(entry, "failed", text[0]))
            continue
        journal.cleaned(entry.key)
        lines.append(SweepLine(entry, "cleaned", detail))
    if not dry_run:
        journal.compact(keep_cleaned_seconds)  # the recent ones stay for the runs that look back at them
    return lines


def _plan(entry: Entry) -> str:
    if entry.kind == PAYMENT:
        return (f"would refund payment {entry.id} unless it reads refunded or declined" if entry.id else
                f"would replay POST /api/payments with Idempotency-Key {entry.key} to find the payment, and refund it")
    return (f"would cancel order {entry.id}" if entry.id else
            f"would replay POST /api/orders with Idempotency-Key {entry.key} to find the order, and cancel it")


def _clean_payment(shop: Any, entry: Entry) -> str:
    payment_id = entry.id
    if payment_id is None:
        status, body = shop.call("POST", "/api/payments", (200, 201, 404, 409, 422), json_body=entry.body,
                                 headers={"Idempotency-Key": entry.key})
        if status not in (200, 201) or not isinstance(body, dict) or not body.get("id"):
            return f"no payment behind Idempotency-Key {entry.key} (the replay answered {status}): nothing was charged"
        payment_id = str(body["id"])
    payment = shop.payment(payment_id)
    if payment.get("status") in SETTLED:
        return f"payment {payment_id} already reads {payment['status']} (read back)"
    shop.refund(payment_id)
    after = shop.payment(payment_id)  # the end state, read back: not the refund's own answer
    if after.get("status") not in SETTLED:
        raise RuntimeError(f"payment {payment_id} reads {after.get('status')!r} after the refund")
    return f"refunded payment {payment_id} (was {payment.get('status')}; reads {after['status']})"


class Unverified(Exception):
    """What the sweeper did, and what it could not read back (reported by key, SKU and quantity)."""


def _inventory(entry: Entry) -> str:
    skus = [str(item.get("sku")) for item in entry.body.get("items") or [] if isinstance(item, dict)]
    return ", ".join(f"GET /api/inventory/{sku}" for sku in skus) or "the stock"


def _items(entry: Entry) -> str:
    lines = [f"{item.get('sku')} x {item.get('qty')}" for item in entry.body.get("items") or [] if isinstance(item, dict)]
    return ", ".join(lines) or "unknown items"


def _clean_order(shop: Any, entry: Entry) -> str:
    order_id, unknown_to_the_shop = entry.id, False
    if order_id is None:
        items = list(entry.body.get("items") or [])
        status, order = shop.call("POST", "/api/orders", (200, 201, 409, 422), json_body={"items": items},
                                  headers={"Idempotency-Key": entry.key})
        if status not in (200, 201) or not isinstance(order, dict) or not order.get("id"):
            raise Unverified(f"Idempotency-Key {entry.key} ({_items(entry)}): the shop knows no order for it (the replay "
                             f"answered {status}), but the lost create may have left a hold on that stock, which no API "
                             f"lists: check {_inventory(entry)}")
        order_id, unknown_to_the_shop = str(order["id"]), status == 201
    shop.cancel(order_id)
    detail = _read_back_cancelled(shop, order_id)
    if unknown_to_the_shop:
        raise Unverified(f"Idempotency-Key {entry.key} ({_items(entry)}): the shop had recorded no order for it (the "
                         f"replay created order {order_id}, now {detail}), so the lost create may have left a hold on "
                         f"that stock, which no API lists: check {_inventory(entry)}")
    return f"cancelled order {order_id}: {detail}"


def _read_back_cancelled(shop: Any, order_id: str) -> str:
    """The order reads cancelled and its reservation released (raises naming what does not)."""
    order = shop.order(order_id)
    if order.get("status") != "cancelled":
        raise RuntimeError(f"order {order_id} reads {order.get('status')!r} after cancel")
    reservation_id = order.get("reservation_id")
    if not reservation_id:
        return "cancelled (read back; no reservation to read)"
    reservation = shop.reservation(str(reservation_id))
    if reservation.get("status") != "released":
        raise RuntimeError(f"order {order_id} is cancelled but its reservation {reservation_id} reads {reservation.get('status')!r}")
    return f"cancelled, reservation {reservation_id} released (read back)"
