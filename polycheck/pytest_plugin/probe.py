"""pytest hooks of the probe metrics: every final report is counted on the controller, the run pushed at its end.

Workers (and a single process) tag each report with the services its check judges; the controller (or the only
process) folds the phases of each check into one result and, once the verdict is known, pushes the run with
`polycheck.signoff.probe_metrics.push`. A push that fails never changes the run's verdict or exit code: it is said in
the terminal summary and on stderr.
"""

from __future__ import annotations

import sys
import time
from pathlib import PurePosixPath
from typing import Any

import pytest

from polycheck.signoff.probe_metrics import CheckResult, ProbeRun, PushError, push
from polycheck.pytest_plugin.state import is_xdist_worker, run_of
from polycheck.core.verdict import FLAKY, Verdict
from polycheck.pytest_plugin.verdicts import BLOCKED, FAILED, INCONCLUSIVE, outcome_of

RANK = {"passed": 0, "skipped": 1, INCONCLUSIVE: 2, BLOCKED: 3, FAILED: 4}
VERDICT_OF_EXIT = {0: "GO", 1: "NO-GO", 6: "INCONCLUSIVE"}


def check_name(nodeid: str) -> str:
    """`suites/test_auth.py::test_login[x]` -> `test_auth::test_login[x]`: stable, short, no folder."""
    path, _, rest = nodeid.partition("::")
    return f"{PurePosixPath(path).stem}::{rest}" if rest else PurePosixPath(path).stem


def phase_outcome(report: pytest.TestReport) -> str | None:
    """What one phase says about the check (None: nothing, e.g. a passing set-up)."""
    judged = outcome_of(report)
    if judged is not None:
        return judged
    if report.failed:
        return FAILED  # a teardown error (synthetic data left behind) or a failure the plugin could not judge
    if report.skipped:
        return "skipped"
    if report.when == "call" and report.passed:
        return "passed"
    return None


class ProbePlugin:
    """Registered in every process when the run pushes metrics; only the controller pushes."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        # a run that collects or explains without checking anything pushes nothing
        self.url = "" if (config.option.collectonly or config.option.help) else run_of(config).push_metrics_url
        self.results: dict[str, CheckResult] = {}
        self.started = time.monotonic()
        self.outcome: str | None = None  # what the push did, for the terminal summary

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not self.url or is_xdist_worker(self.config) or str(report.outcome) == "rerun":
            return
        name = check_name(report.nodeid)
        result = self.results.setdefault(name, CheckResult(name, outcome="passed"))
        verdict = Verdict.of(report)
        if verdict is not None:
            result.service = ",".join(verdict.subjects)
            if report.when == "call":
                result.flaky = verdict.outcome == FLAKY
        result.seconds += float(getattr(report, "duration", 0.0) or 0.0)
        outcome = phase_outcome(report)
        if report.when == "setup":
            result.outcome = "passed"  # a fresh attempt (also after a rerun)
        if outcome is not None and RANK[outcome] > RANK.get(result.outcome, 0):
            result.outcome = outcome

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """After the verdict set the exit status: push the run; a failed push only says why."""
        if not self.url or is_xdist_worker(self.config):
            return
        run = run_of(self.config)
        verdict = VERDICT_OF_EXIT.get(int(session.exitstatus), f"exit {int(session.exitstatus)}")
        settings = run.config.probe
        probe = ProbeRun(env=run.config.name, verdict=verdict, seconds=time.monotonic() - self.started,
                         checks=list(self.results.values()), location=run.probe_location, quorum=settings.quorum)
        try:
            groups = push(self.url, probe, job=settings.job, timeout=settings.push_timeout_seconds)
            self.outcome = f"pushed the probe metrics to {self.url} ({groups} groups, verdict {verdict})"
        except PushError as exc:
            self.outcome = f"PUSH FAILED: {exc}; the run's verdict ({verdict}) and exit code stand"
            if self.config.pluginmanager.get_plugin("terminalreporter") is None:
                sys.stderr.write(f"polycheck: {self.outcome}\n")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.outcome:
            terminalreporter.write_line(f"polycheck: {self.outcome}", red=self.outcome.startswith("PUSH FAILED"))
