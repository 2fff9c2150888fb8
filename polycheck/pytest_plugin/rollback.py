"""pytest hooks of the rollback engine: targets travel with the reports; the controller fires, at once."""

from __future__ import annotations

import threading
from collections import deque
from pathlib import Path
from typing import Any

import pytest

from .. import release
from ..rollback.engine import RollbackEngine
from .markers import ESCALATE_PROPERTY, ROLLBACK_PROPERTY, escalation_of, may_roll_back
from .state import is_xdist_worker, run_of
from ..failures import CheckFailure
from .verdicts import BLOCKED, CULPRIT, ESCALATION, FAILED, INCONCLUSIVE, OUTCOME, judge, redact_exception, subjects_of

ENGINE = pytest.StashKey[RollbackEngine]()
SUBJECTS_PROPERTY = "polycheck_subjects"
LATER: deque[tuple[str, bool]] = deque()  # what the engine said from a check's own thread, for the main thread to print


def flush_notices(terminal: Any) -> None:
    while LATER:
        line, bad = LATER.popleft()
        terminal.write_line(f"polycheck: {line}", red=bad, yellow=not bad, bold=True)


def _connect(settings: Any) -> Any:
    from ..kube import Kube  # the kubernetes client is imported only when a rollback needs the cluster

    return Kube.connect(settings)


def engine_for(config: pytest.Config) -> RollbackEngine | None:
    if is_xdist_worker(config):
        return None  # workers never roll back: the controller sees every report
    engine = config.stash.get(ENGINE, None)
    if engine is None:
        state = run_of(config)
        terminal = config.pluginmanager.get_plugin("terminalreporter")

        def notify(line: str, bad: bool) -> None:
            if terminal is None:
                return
            if threading.current_thread() is not threading.main_thread():
                LATER.append((line, bad))  # a check running ahead: its output would land in another check's capture
                return
            flush_notices(terminal)
            terminal.write_line(f"polycheck: {line}", red=bad, yellow=not bad, bold=True)

        audit = state.rollback_log
        engine = RollbackEngine(
            config=state.config,
            mode=state.rollback_mode,
            run_id=state.run_id,
            release=state.release_version or state.config.environment.release_version,
            audit_path=audit if audit.is_absolute() else config.rootpath / audit,
            kube_factory=lambda: _connect(state.config.kubernetes),
            released=lambda engine: release.resolve(
                state.config, explicit=state.released, since=state.since, kube_factory=engine.kube,
                release_version=state.release_version,  # --release-version only: an env's pin is no evidence of a deploy
            ),
            notify=notify,
            allure_dir=Path(config.option.allure_report_dir) if getattr(config.option, "allure_report_dir", None) else None,
        )
        config.stash[ENGINE] = engine
    return engine


class RollbackPlugin:
    """Registered per run; the controller (or the only process) acts on every final failing report at once."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.acted: set[str] = set()  # checks that ran ahead and were acted on the moment they failed
        self.after_rollback: list[tuple[str, str]] = []  # (check, service): passed once that service was rolled back

    def act_early(self, item: pytest.Item, exc: BaseException, failed_at: float) -> None:
        """A check running ahead (in its own thread) just failed: act now, as its report will say, rather than at its
        turn (the main thread may be in a long browser check). Not when pytest-rerunfailures may run it again."""
        if getattr(self.config.option, "reruns", 0) or item.get_closest_marker("flaky") is not None:
            return
        if isinstance(exc, pytest.skip.Exception):
            return
        engine = engine_for(self.config)
        if engine is None:
            return
        redact_exception(exc)
        outcome, culprits = judge(subjects_of(item), exc, "call")
        reason = str(getattr(exc, "msg", None) or exc).strip()[:2000]
        escalation = (exc.escalation if isinstance(exc, CheckFailure) else None) or escalation_of(item)
        if outcome == INCONCLUSIVE:
            engine.on_inconclusive(item.nodeid, reason)
        elif outcome == FAILED:
            engine.on_failure(item.nodeid, tuple(culprits), reason, rollback=may_roll_back(item), escalation=escalation,
                              failed_at=failed_at)
        else:
            return
        self.acted.add(item.nodeid)

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Record whether each check may roll back and what it escalates, so it travels with its reports (also from xdist)."""
        for item in items:
            if may_roll_back(item):
                item.user_properties.append((ROLLBACK_PROPERTY, True))
            why = escalation_of(item)
            if why:
                item.user_properties.append((ESCALATE_PROPERTY, why))
            item.user_properties.append((SUBJECTS_PROPERTY, ",".join(subjects_of(item))))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """A check failed for good (set-up or body, the final report): act on its culprit now; blocked checks never act."""
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None and LATER:
            flush_notices(terminal)
        props = dict(report.user_properties)
        if report.when == "call" and report.passed:
            self._note_after_rollback(report, props)
        outcome = props.get(OUTCOME)
        if outcome in (None, BLOCKED) or report.when == "teardown":
            return
        if report.when == "call" and report.nodeid in self.acted:
            return  # acted on the moment it failed, ahead of its turn
        engine = engine_for(self.config)
        if engine is None:
            return
        reason = (report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longreprtext).strip()[:2000]
        if outcome == INCONCLUSIVE:
            engine.on_inconclusive(report.nodeid, reason)
        elif outcome == FAILED:
            culprits = tuple(c for c in str(props.get(CULPRIT, "")).split(",") if c)
            engine.on_failure(report.nodeid, culprits, reason, rollback=bool(props.get(ROLLBACK_PROPERTY)),
                              escalation=props.get(ESCALATION) or props.get(ESCALATE_PROPERTY), failed_at=getattr(report, "stop", None))

    def _note_after_rollback(self, report: pytest.TestReport, props: dict[str, Any]) -> None:
        """A check of a service that was rolled back (for real) before it ended judged, at least in part, the
        rolled-back revision: its pass says nothing of the release (checks run at once, and after a rollback)."""
        engine = self.config.stash.get(ENGINE, None)
        if engine is None or engine.mode != "auto":
            return
        ended = getattr(report, "stop", None) or 0.0
        for service in str(props.get(SUBJECTS_PROPERTY, "")).split(","):
            fired = engine.fired.get(service)
            if service and fired is not None and fired < ended:
                self.after_rollback.append((report.nodeid, service))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        flush_notices(terminalreporter)
        if self.after_rollback:
            services = sorted({service for _, service in self.after_rollback})
            terminalreporter.write_line(
                f"polycheck: {len(self.after_rollback)} check(s) of {', '.join(services)} passed after its rollback was "
                f"applied: they judged the rolled-back revision, not this release "
                f"({', '.join(sorted({check.split('::')[-1] for check, _ in self.after_rollback})[:5])})", yellow=True)
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
