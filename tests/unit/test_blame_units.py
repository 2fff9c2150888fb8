"""Units of the blame: routes, outcomes, the release scope, the preflight's verdict, the waiters' terminal states."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from polycheck.core.attribution import Routes
from polycheck.core.config import CONTRACT_ROUTES, load_env
from polycheck.core.failures import CheckFailure, check_failed, inconclusive
from polycheck.checks import diagnosis
from polycheck.checks.flow import step
from polycheck.clients.kube import KubeNotFound, KubeUnavailable
from polycheck.core.polling import PollStopped, hold, poll
from polycheck.checks.preflight import Reach, cut_off
from polycheck.pytest_plugin.verdicts import BLOCKED, FAILED, INCONCLUSIVE, judge
from polycheck.checks.release import ReleaseScope, from_cluster, parse_released, resolve

REPO = Path(__file__).resolve().parents[2]
SERVICES = ["auth", "product", "inventory", "order", "payment", "notification", "search", "gateway"]


def failure(*culprits: str) -> CheckFailure:
    return CheckFailure("broke", culprits=culprits)


def test_gateway_paths_belong_to_the_service_their_route_reaches() -> None:
    routes = Routes(dict(CONTRACT_ROUTES))
    assert routes.service_for("/api/payments/pay_1/refund") == "payment"
    assert routes.service_for("/api/search?q=x") == "search" and routes.service_for("/api/search/status") == "search"
    assert routes.service_for("/api/inventory/reservations/r1") == "inventory"
    assert routes.service_for("/login") is None and routes.service_for("/products") is None  # the storefront: the gateway's
    assert Routes({"a": ("/api/x",), "b": ("/api/x/y",)}).service_for("/api/x/y/1") == "b"  # the longest prefix wins


@pytest.mark.parametrize("subjects, exc, when, expected", [
    (("order", "payment", "inventory"), failure("payment"), "call", (FAILED, ("payment",))),
    (("order", "payment", "inventory"), failure("auth"), "setup", (BLOCKED, ("auth",))),
    (("order",), CheckFailure("no culprit named"), "call", (FAILED, ("order",))),  # its own verdict on its one subject
    (("order",), AssertionError("bare"), "call", (FAILED, ("order",))),
    (("order",), AssertionError("in a fixture"), "setup", (FAILED, ())),  # set-up needs explicit evidence
    (("order", "payment"), CheckFailure("ambiguous"), "call", (FAILED, ())),
    (("order",), CheckFailure("x", inconclusive=True), "call", (INCONCLUSIVE, ())),
    (("order",), KubeUnavailable("cluster down"), "call", (INCONCLUSIVE, ())),
    ((), failure("search"), "call", (FAILED, ("search",))),
])
def test_outcome_follows_the_culprit_and_the_subjects(subjects: tuple[str, ...], exc: BaseException, when: str,
                                                       expected: tuple[str, tuple[str, ...]]) -> None:
    assert judge(subjects, exc, when) == expected


def test_a_step_keeps_the_answering_service_and_diagnoses_the_rest() -> None:
    with pytest.raises(CheckFailure) as answered:
        with step("pay", blame="payment"):
            check_failed("HTTP 500", culprit="order")
    assert answered.value.culprits == ("order",) and "step 'pay': HTTP 500" in answered.value.msg
    with pytest.raises(CheckFailure) as diagnosed:
        with step("confirm", blame="order", diagnose=lambda: ("inventory", "reservation still held")):
            assert False, "not confirmed"
    assert diagnosed.value.culprits == ("inventory",) and "blamed on inventory: reservation still held" in diagnosed.value.msg
    with pytest.raises(CheckFailure) as blind:  # a diagnosis that cannot look names nobody: the owner is blamed
        with step("confirm", blame="order", diagnose=lambda: check_failed("cannot read", culprit="order")):
            assert False
    assert blind.value.culprits == ("order",)
    with pytest.raises(CheckFailure) as unsure:
        with step("anything", blame="order"):
            inconclusive("Prometheus down")
    assert unsure.value.inconclusive and not unsure.value.culprits


def test_waiters_stop_at_terminal_states_and_watches_fail_at_the_first_break() -> None:
    states = iter(["pending_payment", "payment_failed", "confirmed"])
    with pytest.raises(PollStopped, match="cannot happen any more.*payment_failed"):
        poll(lambda: next(states), lambda s: s == "confirmed", stop=lambda s: s == "payment_failed", timeout=5,
             what="confirmed", describe=str, sleep=lambda _: None)
    counts = iter([1, 1, 2])
    with pytest.raises(PollStopped, match="broken after 3 observations: 2"):
        hold(lambda: next(counts), lambda n: n <= 1, seconds=5, what="one email", describe=str, sleep=lambda _: None)


def test_released_services_from_the_option_are_validated() -> None:
    assert parse_released(None, SERVICES) is None
    assert parse_released("order, payment", SERVICES) == frozenset({"order", "payment"})
    with pytest.raises(ValueError, match="unknown service.*ordr"):
        parse_released("ordr", SERVICES)


class FakeKube:
    """Workloads and their current ReplicaSets, as the cluster reports them."""

    def __init__(self, workloads: dict[str, dict[str, Any]], created: dict[str, str]) -> None:
        self.workloads, self.created = workloads, created

    def workload(self, kind: str, name: str) -> dict[str, Any]:
        return self.workloads[name]

    def replicasets(self, selector: str) -> list[dict[str, Any]]:
        name = selector.split("=")[-1]
        return [{"metadata": {"creationTimestamp": self.created[name], "annotations": {"deployment.kubernetes.io/revision": "1"}}}]


def deployment(name: str, tag: str) -> dict[str, Any]:
    return {"kind": "Deployment", "metadata": {"name": name, "annotations": {"deployment.kubernetes.io/revision": "1"}},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"spec": {"containers": [{"image": f"registry/{name}:{tag}"}]}}}}


def test_released_services_from_the_cluster() -> None:
    config = load_env("local", REPO / "envs")
    workloads = {f"{s}-service": deployment(f"{s}-service", "1.3.0") for s in SERVICES}
    workloads["order-service"] = deployment("order-service", "1.3.1")
    workloads["payment-service"] = {"kind": "Rollout", "metadata": {"name": "payment-service"},
                                    "spec": workloads["payment-service"]["spec"],
                                    "status": {"stableRS": "aaa", "currentPodHash": "bbb"}}  # a canary in progress
    created = {f"{s}-service": "2026-11-20T10:00:00Z" for s in SERVICES}
    created["search-service"] = "2026-11-29T10:00:00Z"
    kube = FakeKube(workloads, created)
    by_tag = from_cluster(config, kube, since=None, release_version="1.3.1")  # type: ignore[arg-type]
    assert by_tag is not None and by_tag.services == {"order", "payment"}
    by_time = from_cluster(config, kube, since=1764410000.0, release_version=None)  # 2025-11-29: all were created after
    assert by_time is not None and by_time.services == set(SERVICES)
    recent = from_cluster(config, kube, since=1764324000.0 + 365 * 86400, release_version=None)
    assert recent is not None and recent.services == {"search", "payment"}
    assert from_cluster(config, kube, since=None, release_version=None) is None


def test_a_workload_that_cannot_be_read_counts_only_that_service_as_released() -> None:
    config = load_env("local", REPO / "envs")
    workloads = {f"{s}-service": deployment(f"{s}-service", "1.3.0") for s in SERVICES}
    workloads["order-service"] = deployment("order-service", "1.3.1")
    del workloads["search-service"]
    created = {f"{s}-service": "2026-11-20T10:00:00Z" for s in SERVICES}

    class MissingSearch(FakeKube):
        def workload(self, kind: str, name: str) -> dict[str, Any]:
            if name not in self.workloads:
                raise KubeNotFound(f"deployment {name}: not found in namespace polyshop")
            return super().workload(kind, name)

    scope = from_cluster(config, MissingSearch(workloads, created), since=None, release_version="1.3.1")  # type: ignore[arg-type]
    assert scope is not None and scope.services == {"order", "search"}, scope
    assert "search unknown (deployment search-service: not found in namespace polyshop), so counted as released" in scope.source


def test_an_unknown_release_is_marked_unknown_and_says_why() -> None:
    config = load_env("local", REPO / "envs")

    def unreachable() -> Any:
        raise KubeUnavailable("no cluster")

    scope = resolve(config, explicit=None, since=1.0, release_version=None, kube_factory=unreachable)
    assert not scope.known and scope.services == set(config.service_names), scope
    assert scope.source == "unknown: cannot read the cluster: no cluster"
    no_hint = resolve(config, explicit=None, since=None, release_version=None, kube_factory=lambda: object())  # type: ignore[arg-type, return-value]
    assert not no_hint.known and "no --released, --since nor --release-version" in no_hint.source
    assert resolve(config, explicit=frozenset({"order"}), since=None, release_version=None,
                   kube_factory=unreachable) == ReleaseScope(frozenset({"order"}), "--released")


def test_a_runner_that_reaches_nothing_is_cut_off_but_one_answer_is_enough() -> None:
    down = {name: Reach(name, f"http://{name}/health/live", "unresolvable", "no DNS") for name in SERVICES}
    assert cut_off(down) and "DNS, VPN or network of the runner" in (cut_off(down) or "")
    some = {**down, "order": Reach("order", "http://order/health/live", "refused", "refused")}
    assert cut_off(some)
    one = {**down, "search": Reach("search", "http://search/health/live", "answered", "HTTP 200")}
    assert cut_off(one) is None
    hanging = {**down, "payment": Reach("payment", "http://payment/health/live", "hanging", "no answer")}
    assert cut_off(hanging) is None  # it accepted the connection: the runner reaches the cluster


class FakeShop:
    """The state each service owns, as the diagnoses read it (one order, its reservation, payment and stock)."""

    def __init__(self, order: str, reservation: str | None, payment: str = "succeeded", available: int = 5,
                 refund_kept: bool = True) -> None:
        self.state = {"order": order, "reservation": reservation, "payment": payment}
        self.available, self.refund_kept = available, refund_kept

    def order(self, order_id: str) -> dict[str, Any]:
        return {"id": order_id, "status": self.state["order"], "payment_id": "pay_1",
                "reservation_id": "res_1" if self.state["reservation"] else None}

    def reservation(self, reservation_id: str) -> dict[str, Any]:
        return {"id": reservation_id, "status": self.state["reservation"], "qty": 6, "sku": "SKU-1"}

    def payment(self, payment_id: str) -> dict[str, Any]:
        return {"id": payment_id, "status": self.state["payment"]}

    def refund(self, payment_id: str) -> dict[str, Any]:
        if self.refund_kept:
            self.state["payment"] = "refunded"
        return {"id": payment_id, "status": "refunded"}

    def stock(self, sku: str) -> dict[str, Any]:
        return {"sku": sku, "available": self.available, "reserved": 6}


@pytest.mark.parametrize("shop, expected", [
    (FakeShop("paid", "held"), ("order", "inventory")),  # who lost the confirmation does not show
    (FakeShop("paid", "confirmed"), "order"),  # inventory confirmed: order did not move on
    (FakeShop("pending_payment", "held"), ("order", "payment")),
    (FakeShop("paid", "held", payment="declined"), "payment"),
    (FakeShop("paid", None), "order"),
])
def test_an_unconfirmed_order_names_one_culprit_only_when_the_state_excludes_the_others(shop: FakeShop, expected: Any) -> None:
    assert diagnosis.why_not_confirmed(shop, "ord_1", "pay_1")[0] == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("shop, expected", [
    (FakeShop("cancelled", "held"), ("order", "inventory")),  # order did not ask, or inventory did not release
    (FakeShop("cancelled", "released"), "inventory"),  # its own reservation released, its own stock not back
    (FakeShop("confirmed", "confirmed"), "order"),  # not even cancelled
])
def test_stock_not_back_after_a_cancel(shop: FakeShop, expected: Any) -> None:
    assert diagnosis.why_stock_not_back(shop, "ord_1")[0] == expected  # type: ignore[arg-type]


def test_a_refund_is_judged_by_the_payments_own_get() -> None:
    assert diagnosis.why_not_refunded(FakeShop("cancelled", "released"), "ord_1", "pay_1")[0] == "order"  # type: ignore[arg-type]
    culprit, evidence = diagnosis.why_not_refunded(FakeShop("cancelled", "released", refund_kept=False), "ord_1", "pay_1")  # type: ignore[arg-type]
    assert culprit == "payment" and "answered 'refunded', yet the payment's own GET reads 'succeeded'" in evidence


def test_an_order_beyond_the_stock_blames_inventory_only_when_it_held_what_it_did_not_have() -> None:
    assert diagnosis.why_oversold(FakeShop("pending_payment", "held", available=-1), "ord_1", "SKU-1", 5)[0] == "inventory"  # type: ignore[arg-type]
    assert diagnosis.why_oversold(FakeShop("pending_payment", None, available=5), "ord_1", "SKU-1", 5)[0] == "order"  # type: ignore[arg-type]


def test_candidates_read_culprit_a_or_b_and_fail_naming_both() -> None:
    with pytest.raises(CheckFailure) as both:
        with step("confirm", blame="order", diagnose=lambda: (("order", "inventory"), "paid, held")):
            assert False, "not confirmed"
    assert both.value.culprits == ("order", "inventory") and "blamed on order or inventory: paid, held" in both.value.msg
    assert judge(("order", "payment", "inventory"), both.value) == (FAILED, ("order", "inventory"))
