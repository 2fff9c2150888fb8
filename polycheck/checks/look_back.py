"""Looking back: what earlier runs left behind that only a later run can judge (runbook Section 6, synthetic tests).

A single run watches a confirmation email for `thresholds.duplicate_watch_seconds` (1 s) and reads a refund back
once. A second `order_confirmed` sent minutes later, or a refund undone later (a reconciliation job re-capturing),
is invisible to it. So each run also looks at the synthetic orders and payments of the earlier runs of its env that
the journal still holds (`thresholds.look_back_seconds`, 30 min): every order created at least
`thresholds.late_duplicate_seconds` (5 min) ago has at most one `order_confirmed` email, and every payment its run
refunded still reads refunded. At most `thresholds.look_back_limit` of each, the newest first.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from polycheck.core.leftovers import Entry


def earlier(entries: Iterable[Entry], *, kind: str, env: str, run_id: str, settle_seconds: float, horizon_seconds: float,
            limit: int, now: float | None = None) -> list[Entry]:
    """The entries of `kind` that earlier runs of `env` created (with an id), old enough to judge and young enough
    to be kept, the newest first."""
    now = time.time() if now is None else now
    found = [e for e in entries if e.kind == kind and e.id and e.env == env and e.run_id != run_id
             and settle_seconds <= now - e.at <= horizon_seconds]
    return sorted(found, key=lambda e: e.at, reverse=True)[:max(0, limit)]


def late_duplicates(orders: list[Entry], outbox: Any) -> list[str]:
    """One line per order with more than one `order_confirmed` email, naming the order, its run and every message id.
    `outbox(email)` answers the messages of one address (read once per address)."""
    problems = []
    by_email: dict[str, list[Entry]] = defaultdict(list)
    for order in orders:
        by_email[order.email].append(order)
    for email, own in by_email.items():
        messages = outbox(email)
        for order in own:
            confirmations = [m for m in messages if m.get("order_id") == order.id and m.get("template") == "order_confirmed"]
            if len(confirmations) > 1:
                sent = ", ".join(f"{m.get('id')} at {m.get('sent_at')}" for m in confirmations)
                problems.append(f"order {order.id} (run {order.run_id}, {email}) has {len(confirmations)} order_confirmed "
                                f"emails, expected one: {sent}")
    return problems


def refunds_undone(payments: list[Entry], read: Any) -> list[str]:
    """One line per payment its run refunded (and cleaned) that no longer reads refunded. `read(entry)` answers the
    payment, or None when the environment no longer knows it (then it is not judged)."""
    problems = []
    for entry in payments:
        if not entry.cleaned:
            continue  # its run did not finish cleaning it: the sweeper's, not a refund that was undone
        payment = read(entry)
        if payment is None:
            continue
        if payment.get("status") not in ("refunded", "declined"):
            problems.append(f"payment {entry.id} (run {entry.run_id}, {entry.email}) was refunded by its run and now "
                            f"reads {payment.get('status')!r}")
    return problems

