"""Which earlier entries a run looks back at, and what it finds wrong in them."""

from __future__ import annotations

from polycheck.checks.look_back import earlier, late_duplicates, refunds_undone
from polycheck.core.leftovers import Entry


def _entry(key: str, kind: str, at: float, run: str = "r1", env: str = "prod", cleaned: bool = True, id_: str | None = "x") -> Entry:
    return Entry(key, kind, at, run_id=run, env=env, email="probe@synthetic.polyshop.test", id=id_ or None, cleaned=cleaned)


def test_only_entries_of_earlier_runs_of_this_env_old_enough_and_young_enough_newest_first() -> None:
    entries = [_entry("a", "order", 700.0), _entry("b", "order", 900.0), _entry("c", "order", 990.0),  # 100 s, 10 s old
               _entry("d", "order", 800.0, run="now"), _entry("e", "order", 800.0, env="staging"),
               _entry("f", "order", 100.0), _entry("g", "payment", 800.0), _entry("h", "order", 850.0, id_="")]
    found = earlier(entries, kind="order", env="prod", run_id="now", settle_seconds=60, horizon_seconds=600, limit=5, now=1000.0)
    assert [e.key for e in found] == ["b", "a"]
    assert [e.key for e in earlier(entries, kind="order", env="prod", run_id="now", settle_seconds=60, horizon_seconds=600,
                                   limit=1, now=1000.0)] == ["b"]


def test_a_second_confirmation_is_named_with_both_message_ids_and_one_is_fine() -> None:
    orders = [_entry("a", "order", 1.0, id_="ord_1"), _entry("b", "order", 1.0, id_="ord_2")]
    messages = [{"id": "m1", "order_id": "ord_1", "template": "order_confirmed", "sent_at": "t1"},
                {"id": "m2", "order_id": "ord_1", "template": "order_confirmed", "sent_at": "t2"},
                {"id": "m3", "order_id": "ord_2", "template": "order_confirmed", "sent_at": "t3"},
                {"id": "m4", "order_id": "ord_2", "template": "smoke_test", "sent_at": "t4"}]
    asked: list[str] = []
    problems = late_duplicates(orders, lambda email: asked.append(email) or messages)
    assert len(problems) == 1 and "order ord_1" in problems[0] and "m1 at t1" in problems[0] and "m2 at t2" in problems[0]
    assert asked == ["probe@synthetic.polyshop.test"], "one outbox read per address"


def test_a_refund_that_no_longer_reads_refunded_is_named_and_unknown_or_uncleaned_ones_are_not_judged() -> None:
    payments = [_entry("a", "payment", 1.0, id_="pay_1"), _entry("b", "payment", 1.0, id_="pay_2"),
                _entry("c", "payment", 1.0, id_="pay_3", cleaned=False), _entry("d", "payment", 1.0, id_="pay_4")]
    states = {"pay_1": {"status": "succeeded"}, "pay_2": {"status": "refunded"}, "pay_3": {"status": "succeeded"}, "pay_4": None}
    problems = refunds_undone(payments, lambda entry: states[entry.id or ""])
    assert problems == ["payment pay_1 (run r1, probe@synthetic.polyshop.test) was refunded by its run and now reads 'succeeded'"]
