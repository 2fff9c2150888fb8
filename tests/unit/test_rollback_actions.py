"""The rollback action registry: names and settings checked at config load; an action registered anywhere runs through the engine."""

from __future__ import annotations

import pkgutil
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterator

import pytest

import polycheck.rollback.actions as actions_package
from polycheck.core.config import ConfigError, EnvConfig, load_env
from polycheck.rollback.actions import REGISTRY, ActionRegistry, NoSettings, Plan, Target
from polycheck.checks.release import ReleaseScope
from polycheck.rollback.engine import RollbackEngine

BUILTIN = ["kubernetes-undo", "kubernetes-set-image", "argo-abort", "argo-undo", "webhook", "command"]
ENV = """
[environment]
local_stack = false
[gateway]
url = "http://gw:8080"
[services.order]
url = "http://order:8080"
[rollback]
mode = "auto"
"""


@dataclass(frozen=True)
class LabelSettings:
    record_label: str
    record_times: int = 1


class RecordAction:
    """A test-only action: its plan reads nothing; applying it appends to `applied`."""

    name = "test-record"
    settings = LabelSettings

    def __init__(self) -> None:
        self.applied: list[tuple[str, str]] = []

    def plan(self, target: Target, settings: LabelSettings) -> Plan:
        def apply() -> str:
            self.applied.append((target.service, settings.record_label))
            return f"recorded {target.service} as {settings.record_label}"

        return Plan(self.name, f"record {target.service} as {settings.record_label} ({target.payload['check']})", apply)


@pytest.fixture
def record() -> Iterator[RecordAction]:
    with REGISTRY.registered(RecordAction()) as action:
        assert isinstance(action, RecordAction)
        yield action


def load(tmp_path: Path, rollback: str) -> EnvConfig:
    (tmp_path / "test.toml").write_text(ENV + rollback)
    return load_env("test", tmp_path, environ={})


def engine(config: EnvConfig, mode: str, tmp_path: Path) -> RollbackEngine:
    def no_cluster() -> object:
        raise AssertionError("the test action must not connect to a cluster")

    return RollbackEngine(config=config, mode=mode, run_id="run-1", release="1.2.3", audit_path=tmp_path / "audit.jsonl",
                          kube_factory=no_cluster,  # type: ignore[arg-type]
                          released=lambda engine: ReleaseScope(frozenset({"order"}), "--released"))


def test_the_builtin_actions_are_registered_one_module_each() -> None:
    assert REGISTRY.names() == BUILTIN
    modules = {m.name for m in pkgutil.iter_modules(actions_package.__path__) if not m.name.startswith("_")}
    assert modules - {"protocol", "registry"} == {name.replace("-", "_") for name in BUILTIN}


def test_an_unknown_action_is_refused_at_load_listing_the_registered_names(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, 'actions = ["kubectl-undo"]\n')
    assert f"rollback.actions: unknown action 'kubectl-undo'; valid: {', '.join(BUILTIN)}" in str(err.value)


def test_an_unknown_action_of_a_service_names_its_list(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"rollback.services.order.actions: unknown action 'page-me'; valid: kubernetes-undo, "):
        load(tmp_path, 'actions = ["kubernetes-undo"]\n[rollback.services.order]\nactions = ["page-me"]\n')


def test_an_unknown_rollback_key_lists_every_action_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, 'actions = ["webhook"]\nwebhook_uri = "http://hook"\n')
    message = str(err.value)
    assert "rollback: unknown key 'webhook_uri'" in message
    assert "webhook_url (webhook action), command (command action)" in message


def test_a_listed_action_without_its_setting_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"rollback.actions: the webhook action needs rollback.webhook_url"):
        load(tmp_path, 'actions = ["webhook"]\n')


def test_an_action_setting_of_the_wrong_type_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"rollback.command: expected a list, got 'rollback.sh'"):
        load(tmp_path, 'actions = ["command"]\ncommand = "rollback.sh"\n')


def test_a_command_with_an_unknown_placeholder_is_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"the command action has an unknown placeholder \{version\} in rollback.command; known: service,"):
        load(tmp_path, 'actions = ["command"]\ncommand = ["deploy", "{service}", "{version}"]\n')


def test_a_registered_action_is_validated_like_a_builtin(tmp_path: Path, record: RecordAction) -> None:
    with pytest.raises(ConfigError, match=r"rollback.actions: the test-record action needs rollback.record_label"):
        load(tmp_path, 'actions = ["test-record"]\n')
    with pytest.raises(ConfigError, match=r"rollback.record_times: expected a whole number, got 'twice'"):
        load(tmp_path, 'actions = ["test-record"]\nrecord_label = "x"\nrecord_times = "twice"\n')
    config = load(tmp_path, 'actions = ["test-record"]\nrecord_label = "seen"\n')
    assert config.rollback.settings_for("test-record") == LabelSettings("seen", 1)


def test_a_registered_action_plans_and_applies_through_the_engine(tmp_path: Path, record: RecordAction) -> None:
    config = load(tmp_path, 'actions = ["test-record"]\nrecord_label = "seen"\n')
    rollback = engine(config, "auto", tmp_path)
    rollback.on_failure("test_order_is_confirmed", ("order",), "order never confirmed", rollback=True)
    rollback.settle()
    assert record.applied == [("order", "seen")]
    assert "order" in rollback.fired
    step = [r for r in rollback.records if r["step"] == "test-record"]
    assert [(r["outcome"], r["detail"]) for r in step] == [("done", "recorded order as seen")]
    assert '"step": "test-record"' in rollback.audit_path.read_text()


def test_a_dry_run_describes_the_plan_without_applying_it(tmp_path: Path, record: RecordAction) -> None:
    config = load(tmp_path, 'actions = ["test-record"]\nrecord_label = "seen"\n')
    rollback = engine(config, "dry-run", tmp_path)
    rollback.on_failure("test_order_is_confirmed", ("order",), "order never confirmed", rollback=True)
    rollback.settle()
    assert record.applied == []
    step = [r for r in rollback.records if r["step"] == "test-record"]
    assert [(r["outcome"], r["detail"]) for r in step] == [("planned", "would record order as seen (test_order_is_confirmed)")]


def test_the_registry_refuses_a_second_owner_of_a_name_or_a_key() -> None:
    registry = ActionRegistry(RecordAction())
    with pytest.raises(ValueError, match=r"a rollback action named 'test-record' is registered already"):
        registry.register(RecordAction())

    class Other:
        name = "other"
        settings = LabelSettings

        def plan(self, target: Target, settings: NoSettings) -> Plan:
            raise AssertionError("never planned")

    with pytest.raises(ValueError, match=r"other: the \[rollback\] key 'record_label' belongs to the test-record action"):
        registry.register(Other())
    assert registry.names() == ["test-record"]
    with pytest.raises(LookupError, match=r"unknown rollback action 'other'; registered: test-record"):
        registry.get("other")


def test_an_impaired_dependency_escalates_unless_the_env_says_rollback(tmp_path: Path, record: RecordAction) -> None:
    """A rollback would not mend a dependency: escalate naming it; roll back only where `on_dependency` says so."""
    config = load(tmp_path, 'actions = ["test-record"]\nrecord_label = "seen"\n')
    assert config.rollback.on_dependency_for("order") == "escalate"
    rollback = engine(config, "auto", tmp_path)
    rollback.on_failure("test_health_reports_ok[order]", ("order",), "degraded", rollback=True, dependency="kafka")
    rollback.settle()
    assert record.applied == [] and not rollback.fired
    assert [r["step"] for r in rollback.records] == ["escalation"]
    assert "order reports its dependency kafka impaired: a rollback would not mend it" in rollback.records[0]["detail"]
    config = load(tmp_path, 'actions = ["test-record"]\nrecord_label = "seen"\n[rollback.services.order]\non_dependency = "rollback"\n')
    assert config.rollback.actions_for("order") == ["test-record"]  # a service table without actions keeps the default list
    rollback = engine(config, "auto", tmp_path)
    rollback.on_failure("test_health_reports_ok[order]", ("order",), "degraded", rollback=True, dependency="kafka")
    rollback.settle()
    assert record.applied == [("order", "seen")]


def test_on_dependency_takes_escalate_or_rollback(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"rollback.on_dependency: must be one of escalate, rollback, got 'undo'"):
        load(tmp_path, 'on_dependency = "undo"\n')
