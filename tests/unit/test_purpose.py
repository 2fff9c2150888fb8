"""Who may roll back: the run's purpose and the release scope decide, and the audit log names the rule.

Each rule both ways: the purpose that may act acts on the culprit alone; the others roll nothing back and
escalate once (a gate does not even escalate)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from polycheck.checks.release import ReleaseScope
from polycheck.core.config import ConfigError, load_env
from polycheck.rollback.actions import REGISTRY
from polycheck.rollback.engine import RollbackEngine
from polycheck.rollback.purpose import CANARY, DEPLOY, GATE, PROBE, permission
from tests.unit.test_rollback_actions import ENV, RecordAction

KNOWN = ReleaseScope(frozenset({"order"}), "--released")
UNKNOWN = ReleaseScope(frozenset({"order", "payment"}), "unknown: no --released, --since nor --release-version", known=False)


@pytest.fixture
def record() -> Iterator[RecordAction]:
    with REGISTRY.registered(RecordAction()) as action:
        assert isinstance(action, RecordAction)
        yield action


def run_failure(tmp_path: Path, purpose: str, scope: ReleaseScope, extra: str = "") -> tuple[RollbackEngine, list[str]]:
    """An order check marked rollback fails once, in a run of `purpose` whose scope is `scope`."""
    (tmp_path / "test.toml").write_text(ENV + 'actions = ["test-record"]\nrecord_label = "undo"\n' + extra
                                        + '[escalation]\nwebhooks = ["http://127.0.0.1:9/hook"]\n')
    config = load_env("test", tmp_path, environ={})
    said: list[str] = []
    engine = RollbackEngine(config=config, mode="dry-run", run_id="run-1", release="1.2.3",
                            audit_path=tmp_path / "audit.jsonl", kube_factory=lambda: None,  # type: ignore[arg-type, return-value]
                            released=lambda engine: scope, purpose=purpose, notify=lambda line, bad: said.append(line))
    engine.on_failure("test_order_is_confirmed", ("order",), "order never confirmed", rollback=True)
    engine.settle()  # the run's end: no group wait left
    return engine, said


def decisions(engine: RollbackEngine) -> list[tuple[str, str]]:
    """(service, outcome) of every decision: a rollback decided, or held (outcome none)."""
    return [(r["service"], r["outcome"] if r["step"] == "decision" else "none") for r in engine.records
            if r["step"] in ("decision", "hold")]


def escalations(engine: RollbackEngine) -> list[dict[str, object]]:
    return [r for r in engine.records if r["step"] == "escalation"]


def test_a_deploy_run_rolls_back_a_released_culprit_and_says_the_rule(tmp_path: Path, record: RecordAction) -> None:
    engine, _ = run_failure(tmp_path, DEPLOY, KNOWN)
    assert decisions(engine) == [("order", "dry-run")]
    assert [r["outcome"] for r in engine.records if r["step"] == "test-record"] == ["planned"]
    assert all(r["rule"] == "purpose deploy: order is in this release (released: order (--released))" for r in engine.records)
    assert all(r["purpose"] == DEPLOY for r in engine.records)


def test_a_deploy_run_with_an_unknown_scope_rolls_nothing_back_and_escalates_once(tmp_path: Path, record: RecordAction) -> None:
    engine, said = run_failure(tmp_path, DEPLOY, UNKNOWN)
    assert decisions(engine) == [("order", "none")] and not engine.fired
    assert not [r for r in engine.records if r["step"] == "test-record"]
    assert len(escalations(engine)) == 1
    rule = str(escalations(engine)[0]["rule"])
    assert "release scope is unknown" in rule and "would run ['test-record'] on order" in rule, rule
    assert any("ESCALATION (order)" in line and "nothing rolled back" in line for line in said), said


def test_an_env_that_opts_in_rolls_back_with_an_unknown_scope(tmp_path: Path, record: RecordAction) -> None:
    engine, _ = run_failure(tmp_path, DEPLOY, UNKNOWN, 'unknown_scope = "all"\n')
    assert decisions(engine) == [("order", "dry-run")]
    assert "rollback.unknown_scope = \"all\"" in str(engine.records[0]["rule"])


def test_a_probe_escalates_once_and_never_rolls_back(tmp_path: Path, record: RecordAction) -> None:
    engine, _ = run_failure(tmp_path, PROBE, KNOWN)
    engine.on_failure("test_order_is_listed", ("order",), "order missing", rollback=True)  # a second failing check
    assert decisions(engine) == [("order", "none"), ("order", "none")] and not engine.fired
    assert len(escalations(engine)) == 1
    assert "never rolls back" in str(escalations(engine)[0]["rule"])


def test_a_gate_never_acts(tmp_path: Path, record: RecordAction) -> None:
    engine, said = run_failure(tmp_path, GATE, KNOWN)
    engine.on_inconclusive("test_pr_is_approved", "no token")
    assert not engine.fired and not escalations(engine) and not record.applied
    assert decisions(engine) == [("order", "none")] and "never acts" in str(engine.records[0]["rule"])
    assert not any("ESCALATION" in line for line in said)


def test_a_canary_run_aborts_only_the_rollout_in_progress() -> None:
    in_progress = ReleaseScope(frozenset({"payment"}), "from Kubernetes: Rollouts with a canary in progress")
    allowed = permission(CANARY, "payment", in_progress, actions=["kubernetes-undo", "webhook"], unknown_scope="escalate")
    assert allowed.roll_back and allowed.actions == ("argo-abort",)
    other = permission(CANARY, "order", in_progress, actions=["kubernetes-undo"], unknown_scope="all")
    assert not other.roll_back and other.escalate and "order has no canary in progress" in other.rule
    blind = permission(CANARY, "payment", ReleaseScope(frozenset(), "unknown: cannot read the Rollouts", known=False),
                       actions=["argo-abort"], unknown_scope="all")
    assert not blind.roll_back and "no canary is known to be in progress" in blind.rule


def test_a_culprit_outside_the_release_is_not_rolled_back(tmp_path: Path, record: RecordAction) -> None:
    engine, _ = run_failure(tmp_path, DEPLOY, ReleaseScope(frozenset({"payment"}), "--released"))
    assert decisions(engine) == [("order", "none")] and not engine.fired
    assert "order was not part of this release" in str(escalations(engine)[0]["rule"])


def test_an_unknown_scope_setting_is_refused(tmp_path: Path) -> None:
    (tmp_path / "test.toml").write_text(ENV + 'unknown_scope = "some"\n')
    with pytest.raises(ConfigError, match="rollback.unknown_scope"):
        load_env("test", tmp_path, environ={})
