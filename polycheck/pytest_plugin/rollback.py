"""pytest hooks of the rollback engine: the controller decides on every failing verdict at once (a rollback then
waits out the engine's group wait, which the run's end cuts short).

One decision path: `RollbackPlugin.decide(check, verdict)`, for a check that failed in its turn (its final report)
and for one that failed while running ahead (the moment it failed, from its own thread). Both pass the same
`Verdict`, built by `verdicts.verdict_of`, so the audit log reads the same whichever path ran; the engine
remembers the checks it decided on, so the later report of a check decided ahead is not acted on twice.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

import pytest

from polycheck.checks import release
from polycheck.rollback.engine import RollbackEngine
from polycheck.rollback.purpose import CANARY
from polycheck.core.verdict import INCONCLUSIVE, Verdict
from polycheck.pytest_plugin.cut_off import pointing_to_signoff
from polycheck.pytest_plugin.state import RESOURCES, is_xdist_worker, run_of
from polycheck.pytest_plugin.verdicts import verdict_of

ENGINE = pytest.StashKey[RollbackEngine]()


def _connect(settings: Any) -> Any:
    from polycheck.clients.kube import Kube  # the kubernetes client is imported only when a rollback needs the cluster

    return Kube.connect(settings)


def engine_for(config: pytest.Config) -> RollbackEngine | None:
    """The run's engine (built on first use), or None on an xdist worker: the controller sees every report."""
    if is_xdist_worker(config):
        return None
    engine = config.stash.get(ENGINE, None)
    if engine is None:
        state = run_of(config)
        plugin = config.pluginmanager.get_plugin(PLUGIN)
        audit = state.rollback_log
        engine = RollbackEngine(
            config=state.config,
            mode=state.rollback_mode,
            run_id=state.run_id,
            release=state.release_version or state.config.environment.release_version,
            audit_path=audit if audit.is_absolute() else config.rootpath / audit,
            kube_factory=lambda: _connect(state.config.kubernetes),
            purpose=state.purpose,
            released=(lambda engine: release.canary_scope(state.config, engine.kube)) if state.purpose == CANARY else (
                lambda engine: release.resolve(
                    state.config, explicit=state.released, since=state.since, kube_factory=engine.kube,
                    release_version=state.release_version,  # --release-version only: an env's pin is no evidence of a deploy
                )),
            notify=plugin.notify if isinstance(plugin, RollbackPlugin) else (lambda line, bad: None),
            in_flight=resources.board.in_flight if (resources := config.stash.get(RESOURCES, None)) else None,
        )
        config.stash[ENGINE] = engine
    return engine


class RollbackPlugin:
    """Registered per run; the controller (or the only process) decides on every failing verdict at once."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.after_rollback: list[tuple[str, str]] = []  # (check, service): passed once that service was rolled back
        self.notices: deque[tuple[str, bool]] = deque()  # said from a check's own thread, printed by the main thread

    # -- the one decision ------------------------------------------------------------------------------
    def decide(self, check: str, verdict: Verdict) -> None:
        """Act on one verdict: an inconclusive one escalates once for the run; a failure rolls back its culprit if
        this release changed it, or escalates. Each check is decided once (the engine remembers it)."""
        if not verdict.acts:
            return
        engine = engine_for(self.config)
        if engine is None:
            return

        def act() -> None:
            if verdict.outcome == INCONCLUSIVE:
                engine.on_inconclusive(check, verdict.reason, shared_cause=verdict.shared_cause)
            else:
                engine.on_failure(check, verdict.culprits, verdict.reason, rollback=verdict.may_roll_back,
                                  escalation=verdict.escalation, failed_at=verdict.stop or None, dependency=verdict.dependency)

        engine.decide_once(check, act)

    def act_early(self, item: pytest.Item, exc: BaseException, failed_at: float) -> None:
        """A check running ahead (in its own thread) just failed: decide now, as its report will say, rather than at
        its turn (the main thread may be in a long browser check). Not when pytest-rerunfailures may run it again."""
        if self._may_rerun(item):
            return
        from polycheck.pytest_plugin.concurrent import AHEAD

        ahead = item.stash.get(AHEAD, None)
        started = ahead.started if ahead is not None else failed_at
        self.decide(item.nodeid, verdict_of(item, exc, "call", start=started, stop=failed_at))

    def _may_rerun(self, item: pytest.Item) -> bool:
        return bool(getattr(self.config.option, "reruns", 0)) or item.get_closest_marker("flaky") is not None

    # -- terminal notices --------------------------------------------------------------------------------
    def notify(self, line: str, bad: bool) -> None:
        """What the engine says: printed at once from the main thread, queued from a check's own thread (its
        output would land in another check's capture)."""
        self.notices.append((line, bad))
        if threading.current_thread() is threading.main_thread():
            self.flush(self.config.pluginmanager.get_plugin("terminalreporter"))

    def flush(self, terminal: Any) -> None:
        while terminal is not None and self.notices:
            line, bad = self.notices.popleft()
            terminal.write_line(f"polycheck: {pointing_to_signoff(line, run_of(self.config).cut_off)}", red=bad,
                                yellow=not bad, bold=True)

    # -- hooks ---------------------------------------------------------------------------------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """A check failed for good (set-up or body, the final report): decide on its verdict now."""
        self.flush(self.config.pluginmanager.get_plugin("terminalreporter"))
        verdict = Verdict.of(report)
        if verdict is None or str(report.outcome) == "rerun":
            return
        if report.when == "call" and report.passed:
            self._note_after_rollback(report, verdict)
        self.decide(report.nodeid, verdict)

    def _note_after_rollback(self, report: pytest.TestReport, verdict: Verdict) -> None:
        """A check of a service that was rolled back (for real) before it ended judged, at least in part, the
        rolled-back revision: its pass says nothing of the release (checks run at once, and after a rollback)."""
        engine = self.config.stash.get(ENGINE, None)
        if engine is None or engine.mode != "auto":
            return
        ended = verdict.stop or getattr(report, "stop", None) or 0.0
        for service in verdict.subjects:
            fired = engine.fired.get(service)
            if fired is not None and fired < ended:
                self.after_rollback.append((report.nodeid, service))

    def pytest_sessionfinish(self) -> None:
        """The run is over, so no other failure is coming: a rollback waiting out its group wait is decided now
        (after the checks running ahead finished, before the sign-off reads the decisions)."""
        engine = self.config.stash.get(ENGINE, None)
        if engine is not None:
            engine.settle()

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        self.flush(terminalreporter)
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
        cut_off = run_of(self.config).cut_off
        for record in engine.records:
            bad = record["outcome"] == "failed"
            subject = record["service"] or ("the run" if record["step"] == "escalation" else "no service")  # (a gate's hold)
            terminalreporter.write_line(
                f"{subject:13} {record['step']:12} {record['outcome']:8} {pointing_to_signoff(record['detail'], cut_off)}", red=bad
            )
        terminalreporter.write_line(f"audit log: {engine.audit_path}")


PLUGIN = "polycheck-rollback"
