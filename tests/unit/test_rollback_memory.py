"""A rollback has a memory and a blast radius: an undo of ours is never undone again nor repeated, and a run rolls
back at most rollback.max_services services. Each rule both ways, through the engine, on a recording cluster."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from polycheck.checks.release import ReleaseScope
from polycheck.core.config import load_env
from polycheck.rollback.engine import RollbackEngine
from polycheck.rollback.memory import ANNOTATION, Memory, Revisions, refusal
from tests.unit.test_rollback_actions import ENV

HASH = {1: "aaa111", 2: "bbb222", 3: "ccc333"}


class Cluster:
    """One Deployment `order-service` with ReplicaSets of revisions 1..3; an undo makes the previous template current
    (revision 4, the previous hash), as the deployment controller does."""

    namespace = "polyshop"

    def __init__(self, current: int = 3) -> None:
        self.sets = {n: HASH[n] for n in range(1, current + 1)}
        self.current = current
        self.annotations: dict[str, str] = {}
        self.patches: list[Any] = []

    def _rs(self, revision: int, template: str) -> dict[str, Any]:
        return {"metadata": {"name": f"order-{template}", "labels": {"app": "order", "pod-template-hash": template},
                             "annotations": {"deployment.kubernetes.io/revision": str(revision)}},
                "spec": {"template": {"metadata": {"labels": {"app": "order", "pod-template-hash": template}},
                                      "spec": {"containers": [{"name": "order", "image": "order:1.3.0"}]}}}}

    def deployment(self, name: str) -> dict[str, Any]:
        return {"kind": "Deployment", "metadata": {"name": name, "annotations": {
            "deployment.kubernetes.io/revision": str(self.current), **self.annotations}},
                "spec": {"selector": {"matchLabels": {"app": "order"}}, "replicas": 1,
                         "template": self._rs(self.current, self.sets[self.current])["spec"]["template"]}}

    def workload(self, kind: str, name: str) -> dict[str, Any]:
        return self.deployment(name)

    def replicasets(self, selector: str) -> list[dict[str, Any]]:
        return [self._rs(n, h) for n, h in self.sets.items()]

    def patch_deployment(self, name: str, body: Any) -> dict[str, Any]:
        self.patches.append(body)
        if isinstance(body, list):  # the undo: the previous revision's ReplicaSet becomes revision current + 1
            template = self.sets.pop(max(n for n in self.sets if n < self.current))
            self.current = max(self.sets) + 1
            self.sets[self.current] = template
        else:
            self.annotations.update(body["metadata"]["annotations"])
        return self.deployment(name)


def engine(tmp_path: Path, cluster: Cluster, extra: str = "", run: str = "run-1") -> RollbackEngine:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "test.toml").write_text(ENV + 'actions = ["kubernetes-undo"]\n' + extra)
    config = load_env("test", tmp_path, environ={})
    return RollbackEngine(config=config, mode="auto", run_id=run, release="1.3.0", audit_path=tmp_path / "audit.jsonl",
                          kube_factory=lambda: cluster,  # type: ignore[arg-type, return-value]
                          released=lambda e: ReleaseScope(frozenset(e.config.service_names), "image tag 1.3.0"))


def undos(engine: RollbackEngine) -> list[str]:
    return [r["outcome"] for r in engine.records if r["step"] == "kubernetes-undo"]


def test_a_service_still_failing_after_our_rollback_is_not_undone_again(tmp_path: Path) -> None:
    """The ping-pong of a config change at the same tag: three runs, one undo, then escalations."""
    cluster = Cluster()
    first = engine(tmp_path, cluster, run="run-1")
    first.on_failure("test_health[order]", ("order",), "order /health 503", rollback=True)
    first.settle()
    assert undos(first) == ["done"] and cluster.current == 4 and cluster.sets[4] == HASH[2]
    memory = Memory.of(cluster.deployment("order-service"))
    assert memory is not None and (memory.undone_hash, memory.restored_hash, memory.run_id) == (HASH[3], HASH[2], "run-1")
    for run in ("run-2", "run-3"):
        again = engine(tmp_path, cluster, run=run)
        again.on_failure("test_health[order]", ("order",), "order /health 503", rollback=True)
        again.settle()
        assert undos(again) == [] and cluster.current == 4, "our own rollback was undone"
        (escalation,) = [r for r in again.records if r["step"] == "escalation"]
        assert "order is still failing after it was rolled back to revision 2 (bbb222) by run run-1" in escalation["detail"]
        assert "not this release" in escalation["detail"] and escalation["rule"].startswith("rollback memory: ")


def test_an_undo_that_would_restore_what_we_undid_is_refused() -> None:
    memory = Memory(HASH[3], 3, HASH[2], 2, "run-1", "2026-12-02T04:00:00+00:00", "1.3.0")
    assert refusal("order", memory, Revisions("ddd444", 5, HASH[3], 3)) is not None  # would bring back the undone one
    assert "never undone twice" in (refusal("order", memory, Revisions("ddd444", 5, HASH[3], 3)) or "")
    assert refusal("order", memory, Revisions("ddd444", 5, "eee555", 4)) is None  # a new release since: may undo
    assert refusal("order", None, Revisions(HASH[3], 3, HASH[2], 2)) is None  # no memory: may undo
    assert Memory.of({"metadata": {"annotations": {ANNOTATION: "not json"}}}) is None


def test_a_run_rolls_back_at_most_max_services_and_escalates_naming_them(tmp_path: Path) -> None:
    cluster = Cluster()
    rollback = engine(tmp_path, cluster)
    rollback.on_failure("test_health[order]", ("order",), "order /health 503", rollback=True)
    rollback.settle()
    rollback.on_failure("test_health[order-too]", ("order",), "again", rollback=True)  # the same service: decided once
    assert undos(rollback) == ["done"]
    two = engine(tmp_path / "two", Cluster(), 'max_services = 2\n')
    two.fired["payment"] = 0.0  # one service rolled back already in this run; the limit allows a second
    two.on_failure("test_health[order]", ("order",), "order /health 503", rollback=True)
    two.settle()
    assert undos(two) == ["done"] and "order" in two.fired
    held = engine(tmp_path / "held", Cluster())
    held.fired["payment"] = 0.0  # one service rolled back already in this run
    held.on_failure("test_health[order]", ("order",), "order /health 503", rollback=True)
    held.settle()
    assert undos(held) == [] and "order" in held.held
    (escalation,) = [r for r in held.records if r["step"] == "escalation"]
    assert "2 services failing at once (payment, order): suspect a shared cause" in escalation["detail"], escalation
    assert "rollback.max_services = 1" in escalation["detail"]


def test_the_memory_is_written_as_one_annotation(tmp_path: Path) -> None:
    cluster = Cluster()
    once = engine(tmp_path, cluster)
    once.on_failure("test_health[order]", ("order",), "503", rollback=True)
    once.settle()
    data = json.loads(cluster.annotations[ANNOTATION])
    assert set(data) == {"undone_hash", "undone_revision", "restored_hash", "restored_revision", "run_id", "at", "release"}


PAYMENT = '[services.payment]\nurl = "http://payment:8080"\n'


def escalations(engine: RollbackEngine) -> list[dict[str, Any]]:
    return [r for r in engine.records if r["step"] == "escalation"]


def test_two_services_failing_within_the_group_wait_roll_back_neither_and_escalate_once(tmp_path: Path) -> None:
    """A shared cause fails several services within moments: the first to fail is not rolled back for it."""
    cluster = Cluster()
    both = engine(tmp_path, cluster, 'group_wait_seconds = 30\n' + PAYMENT)
    both.on_failure("test_health[order]", ("order",), "order /health 503", rollback=True)
    assert undos(both) == [] and not both.fired, "rolled back before the group wait ended"
    both.on_failure("test_health[payment]", ("payment",), "payment /health 503", rollback=True)
    both.settle()
    assert undos(both) == [] and not both.fired and cluster.patches == []
    assert set(both.held) == {"order", "payment"}
    (escalation,) = escalations(both)
    assert "2 services failing at once (order, payment) within the 30 s group wait: suspect a shared cause" in escalation["detail"]
    assert escalation["service"] == "order,payment" and "rollback.max_services = 1" in escalation["detail"]
    holds = [r for r in both.records if r["step"] == "hold"]
    assert {r["service"] for r in holds} == {"order", "payment"} and all(r["rule"].startswith("blast radius: ") for r in holds)


def test_a_failing_service_outside_the_release_holds_the_rollback_of_the_released_one(tmp_path: Path) -> None:
    """Only order was released; payment failing beside it is evidence of a shared cause all the same."""
    cluster = Cluster()
    one = engine(tmp_path, cluster, 'group_wait_seconds = 30\n' + PAYMENT)
    one.released = lambda e: ReleaseScope(frozenset({"order"}), "--released order")
    one.on_failure("test_health[order]", ("order",), "order /health 503", rollback=True)
    one.on_failure("test_health[payment]", ("payment",), "payment /health 503", rollback=True)
    one.settle()
    assert undos(one) == [] and set(one.held) == {"order"}
    (escalation,) = escalations(one)  # one: payment's "not part of this release" waited and is named in it
    assert "2 services failing at once (order, payment)" in escalation["detail"], escalation


def test_services_nobody_acts_on_failing_together_escalate_once_naming_them(tmp_path: Path) -> None:
    """Neither was released: each would escalate "not part of this release"; within one group wait, one says both."""
    cluster = Cluster()
    run = engine(tmp_path, cluster, 'group_wait_seconds = 30\n' + PAYMENT)
    run.released = lambda e: ReleaseScope(frozenset({"search"}), "--released search")
    run.on_failure("test_health[order]", ("order",), "order /health 503", rollback=True)
    run.on_failure("test_health[payment]", ("payment",), "payment /health 503", rollback=True)
    run.on_failure("test_flow[payment]", ("payment",), "payment declined", rollback=True)
    assert escalations(run) == [], "escalated before the group wait ended"
    run.settle()
    assert undos(run) == [] and not run.fired
    (escalation,) = escalations(run)
    assert escalation["service"] == "order,payment", escalation
    assert "2 services failing at once (order, payment), none acted on — order: purpose deploy: order was not part" \
        in escalation["detail"] and "; payment: purpose deploy: payment was not part" in escalation["detail"], escalation


def test_one_service_nobody_acts_on_escalates_alone_when_the_wait_ends(tmp_path: Path) -> None:
    cluster = Cluster()
    escalated = threading.Event()
    run = engine(tmp_path, cluster, 'group_wait_seconds = 0.05\n' + PAYMENT)
    run.released = lambda e: ReleaseScope(frozenset({"search"}), "--released search")
    run.notify = lambda line, bad: escalated.set() if line.startswith("ESCALATION") else None
    run.on_failure("test_health[order]", ("order",), "order /health 503", rollback=True, failed_at=time.time())
    assert escalated.wait(timeout=30), "the group wait's timer never escalated"
    (escalation,) = escalations(run)
    assert escalation["service"] == "order" and "order was not part of this release" in escalation["detail"], escalation
    assert escalation["reason"] == "order /health 503" and "check_failed_at" in escalation


def test_one_failing_service_is_rolled_back_when_its_group_wait_ends(tmp_path: Path) -> None:
    """The other way round: nothing else failed, so the timer's end rolls it back, without the run's end."""
    cluster = Cluster()
    rolled = threading.Event()
    one = engine(tmp_path, cluster, 'group_wait_seconds = 0.05\n' + PAYMENT)
    one.notify = lambda line, bad: rolled.set() if line.startswith("ROLLED BACK order") else None
    one.on_failure("test_health[order]", ("order",), "order /health 503", rollback=True, failed_at=time.time())
    assert rolled.wait(timeout=30), "the group wait's timer never decided"
    assert undos(one) == ["done"] and set(one.fired) == {"order"} and not one.held
    (decision,) = [r for r in one.records if r["step"] == "decision"]
    assert decision["reason"] == "order /health 503" and decision["seconds_after_failure"] >= 0.049  # after the wait
    one.settle()  # the run's end after the timer: nothing is decided twice
    assert undos(one) == ["done"]
    one.on_failure("test_health[payment]", ("payment",), "payment /health 503", rollback=True)  # after order's wait
    one.settle()
    assert undos(one) == ["done"] and set(one.held) == {"payment"}
    assert "rolled back: order; not payment" in one.held["payment"] and "nothing rolled back" not in one.held["payment"]


def test_services_held_together_after_a_rollback_escalate_once_naming_them(tmp_path: Path) -> None:
    """order was rolled back when its wait ended; payment and inventory then fail within one later wait: both are
    held by the limit, and one escalation names both (not one per service)."""
    cluster = Cluster()
    run = engine(tmp_path, cluster, 'group_wait_seconds = 30\n' + PAYMENT + '[services.inventory]\nurl = "http://inventory:8080"\n')
    run.on_failure("test_health[order]", ("order",), "order /health 503", rollback=True)
    run.settle()
    assert set(run.fired) == {"order"}
    run.on_failure("test_health[payment]", ("payment",), "payment /health 503", rollback=True)
    run.on_failure("test_health[inventory]", ("inventory",), "inventory /health 503", rollback=True)
    run.settle()
    assert set(run.held) == {"payment", "inventory"} and set(run.fired) == {"order"}
    held = [e for e in escalations(run) if "rolled back: order" in e["detail"]]
    assert len(held) == 1, escalations(run)
    assert held[0]["service"] == "payment,inventory" and "not payment, inventory" in held[0]["detail"], held[0]
    assert "3 services failing at once (order, payment, inventory)" in held[0]["detail"], held[0]


SHARED = "common cause: 5 of 8 services timed out in this run (auth, gateway, order, product, search): overload"


def test_a_shared_cause_found_within_the_group_wait_holds_the_rollback_waiting(tmp_path: Path) -> None:
    """order failed alone, then most services timed out (the checks after it turned inconclusive, a shared cause): the
    rollback waiting out the wait is held, and the run's one escalation says it was not rolled back."""
    cluster = Cluster()
    run = engine(tmp_path, cluster, 'group_wait_seconds = 30\n' + PAYMENT)
    run.on_failure("test_health[order]", ("order",), "order /health 503", rollback=True, failed_at=time.time())
    run.on_inconclusive("test_health[search]", f"{SHARED} — this check: search /health timed out", shared_cause=SHARED)
    run.settle()  # the run's end: nothing left to decide
    assert undos(run) == [] and not run.fired and cluster.patches == []
    assert set(run.held) == {"order"} and run.held["order"].startswith(SHARED)
    (hold,) = [r for r in run.records if r["step"] == "hold"]
    assert hold["service"] == "order" and hold["rule"].startswith("shared cause: common cause: 5 of 8")
    assert hold["reason"] == "order /health 503" and "check_failed_at" in hold
    (escalation,) = escalations(run)
    assert escalation["service"] == "" and "not rolled back: order" in escalation["detail"], escalation


def test_a_shared_cause_after_the_run_already_escalated_escalates_the_hold(tmp_path: Path) -> None:
    cluster = Cluster()
    run = engine(tmp_path, cluster, 'group_wait_seconds = 30\n' + PAYMENT)
    run.on_inconclusive("test_error_rate[order]", "order 5xx ratio over 3 requests: too little evidence")
    run.on_failure("test_health[order]", ("order",), "order /health 503", rollback=True)
    run.on_inconclusive("test_health[search]", SHARED, shared_cause=SHARED)
    run.settle()
    assert undos(run) == [] and set(run.held) == {"order"}
    assert [r["service"] for r in escalations(run)] == ["", "order"], escalations(run)
    assert f"{SHARED}: nothing rolled back (not order)" in escalations(run)[1]["detail"]


def test_a_shared_cause_covers_the_escalation_of_a_failure_nobody_acts_on(tmp_path: Path) -> None:
    cluster = Cluster()
    run = engine(tmp_path, cluster, 'group_wait_seconds = 30\n' + PAYMENT)
    run.released = lambda e: ReleaseScope(frozenset({"order"}), "--released order")
    run.on_failure("test_health[order]", ("order",), "order /health 503", rollback=True)
    run.on_failure("test_health[payment]", ("payment",), "payment /health 503", rollback=True)  # not released
    run.on_inconclusive("test_health[search]", SHARED, shared_cause=SHARED)
    run.settle()
    assert undos(run) == [] and set(run.held) == {"order"}
    (escalation,) = escalations(run)
    assert "; not rolled back: order; failing, not acted on: payment" in escalation["detail"], escalation


def test_a_failure_decided_after_a_shared_cause_is_held_not_rolled_back(tmp_path: Path) -> None:
    """A check judged failed before most services timed out, but decided after: no rollback for it either."""
    cluster = Cluster()
    run = engine(tmp_path, cluster, 'group_wait_seconds = 30\n' + PAYMENT)
    run.on_inconclusive("test_health[search]", SHARED, shared_cause=SHARED)
    run.on_failure("test_health[order]", ("order",), "order /health 503", rollback=True)
    run.settle()
    assert undos(run) == [] and not run.fired and set(run.held) == {"order"}
    (hold,) = [r for r in run.records if r["step"] == "hold"]
    assert hold["rule"].startswith("shared cause: common cause: 5 of 8"), hold


def test_a_failure_nobody_acts_on_is_still_escalated_when_a_shared_cause_follows_an_escalated_run(tmp_path: Path) -> None:
    cluster = Cluster()
    run = engine(tmp_path, cluster, 'group_wait_seconds = 30\n' + PAYMENT)
    run.released = lambda e: ReleaseScope(frozenset({"search"}), "--released search")
    run.on_inconclusive("test_error_rate[order]", "order 5xx ratio over 3 requests: too little evidence")
    run.on_failure("test_health[payment]", ("payment",), "payment /health 503", rollback=True)  # not released
    run.on_inconclusive("test_health[search]", SHARED, shared_cause=SHARED)
    run.settle()
    assert [r["service"] for r in escalations(run)] == ["", "payment"], escalations(run)
    assert "failing, not acted on: payment" in escalations(run)[1]["detail"], escalations(run)


def test_an_inconclusive_check_without_a_shared_cause_holds_nothing(tmp_path: Path) -> None:
    """The other way round: a quiet window's inconclusive post-deploy check says nothing of order's crash loop."""
    cluster = Cluster()
    run = engine(tmp_path, cluster, 'group_wait_seconds = 30\n' + PAYMENT)
    run.on_failure("test_rollout[order]", ("order",), "order crash-looping", rollback=True)
    run.on_inconclusive("test_error_rate[payment]", "payment 5xx ratio over 0 requests: too little evidence")
    run.settle()
    assert undos(run) == ["done"] and set(run.fired) == {"order"} and not run.held


def test_with_no_group_wait_the_first_failure_acts_at_once_and_the_limit_holds_the_next(tmp_path: Path) -> None:
    cluster = Cluster()
    at_once = engine(tmp_path, cluster, 'group_wait_seconds = 0\n' + PAYMENT)
    at_once.on_failure("test_health[order]", ("order",), "order /health 503", rollback=True)
    assert undos(at_once) == ["done"]
    at_once.on_failure("test_health[payment]", ("payment",), "payment /health 503", rollback=True)
    assert set(at_once.held) == {"payment"}
    assert any("2 services failing at once (order, payment)" in r["detail"] for r in escalations(at_once))


def test_a_group_wait_outside_0_to_60_seconds_is_refused(tmp_path: Path) -> None:
    import pytest

    from polycheck.core.config import ConfigError

    with pytest.raises(ConfigError, match="rollback.group_wait_seconds"):
        engine(tmp_path, Cluster(), 'group_wait_seconds = 61\n')
