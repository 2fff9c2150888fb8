"""pytest hooks of the rollback engine: targets travel with the reports; the controller fires, at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ..kube import Kube
from ..run import run_state
from .engine import RollbackEngine
from .targets import SERVICE_PROPERTY, USER_PROPERTY, checked_service, rollback_target

ENGINE = pytest.StashKey[RollbackEngine]()


def engine_for(config: pytest.Config) -> RollbackEngine | None:
    if hasattr(config, "workerinput"):
        return None  # workers never roll back: the controller sees every report
    engine = config.stash.get(ENGINE, None)
    if engine is None:
        state = run_state(config)
        terminal = config.pluginmanager.get_plugin("terminalreporter")

        def notify(line: str, bad: bool) -> None:
            if terminal is not None:
                terminal.write_line(f"polycheck: {line}", red=bad, yellow=not bad, bold=True)

        audit = Path(config.getoption("polycheck_rollback_log") or state.config.rollback.audit_log)
        engine = RollbackEngine(
            config=state.config,
            mode=state.rollback_mode,
            run_id=state.run_id,
            release=state.release_version or state.config.environment.release_version,
            audit_path=audit if audit.is_absolute() else config.rootpath / audit,
            kube_factory=lambda: Kube.connect(run_state(config).config.kubernetes),
            notify=notify,
            allure_dir=Path(config.option.allure_report_dir) if getattr(config.option, "allure_report_dir", None) else None,
        )
        config.stash[ENGINE] = engine
    return engine


class RollbackPlugin:
    """Registered per run; the controller (or the only process) acts on every final failing report at once."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Record each check's rollback target and service on the item, so they travel with its reports (also from xdist workers)."""
        for item in items:
            target, service = rollback_target(item), checked_service(item)
            if target is not None:
                item.user_properties.append((USER_PROPERTY, target))
            if service is not None:
                item.user_properties.append((SERVICE_PROPERTY, service))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """A check failed for good (the final report, after any reruns): fire its service's rollback now."""
        if report.when != "call" or not report.failed:
            return
        props = dict(report.user_properties)
        target, service = props.get(USER_PROPERTY), props.get(SERVICE_PROPERTY)
        if target is None and service is None:
            return
        engine = engine_for(self.config)
        if engine is not None:
            engine.on_failure(report.nodeid, target, service, report.longreprtext.strip()[:2000], getattr(report, "stop", None))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        engine = self.config.stash.get(ENGINE, None)
        if engine is None or not engine.records:
            return
        terminalreporter.section("polycheck rollbacks and escalations")
        for record in engine.records:
            bad = record["outcome"] == "failed"
            terminalreporter.write_line(
                f"{record['service']:13} {record['step']:12} {record['outcome']:8} {record['detail']}", red=bad
            )
        terminalreporter.write_line(f"audit log: {engine.audit_path}")
