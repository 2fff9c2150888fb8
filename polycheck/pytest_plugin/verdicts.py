"""Each check's outcome with its culprit: failed, blocked by another service, or inconclusive; and the run's verdict.

- failed: the culprit the evidence names is one of the services the check judges (its subjects);
- blocked: the culprit is a service the check only depends on (auth for the order flow): the check
  could not do its work, its outcome is "blocked by auth", and it rolls nothing back;
- inconclusive: the checker could not measure (see `failures.inconclusive`).

The outcome and the culprit travel with the report as user properties (so they reach the xdist
controller, the JUnit XML and the rollback engine), show in the terminal and as Allure labels.
The run's verdict is GO (exit 0), NO-GO (exit 1: a check failed or was blocked) or INCONCLUSIVE
(exit 6: nothing failed, but something could not be measured).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from ..failures import CheckFailure, culprits_of, is_inconclusive
from ..redact import redact_secrets
from ..signoff.summary import CheckOutcome

OUTCOME = "polycheck_outcome"
CULPRIT = "polycheck_culprit"
ESCALATION = "polycheck_escalation"
STEPS = "polycheck_steps"  # the runbook steps a check belongs to (set at collection, see reporting)
LINKS = "polycheck_links"  # a failure's evidence links, JSON [[name, url], ...] (see reporting)
FAILED, BLOCKED, INCONCLUSIVE = "failed", "blocked", "inconclusive"
EXIT_NO_GO = 1
EXIT_INCONCLUSIVE = 6
SUBJECT_PARAMS = ("service", "routed_service", "canary_service")

try:
    import allure
except ImportError:  # pragma: no cover - the project installs allure-pytest
    allure = None


def subjects_of(item: pytest.Item) -> tuple[str, ...]:
    """The services a check judges: its rollback marker's services and its parametrised service."""
    names: list[str] = []
    marker = item.get_closest_marker("rollback")
    if marker is not None:
        names += [str(a) for a in marker.args]
    params = getattr(getattr(item, "callspec", None), "params", {})
    names += [str(params[p]) for p in SUBJECT_PARAMS if p in params]
    if "metric_check" in params:
        names.append(str(params["metric_check"][0]))
    return tuple(dict.fromkeys(names))


def judge(subjects: tuple[str, ...], exc: BaseException | None, when: str = "call") -> tuple[str, tuple[str, ...]]:
    """(outcome, culprits) of a failing phase."""
    if is_inconclusive(exc):
        return INCONCLUSIVE, ()
    culprits = culprits_of(exc)
    if not culprits and when == "call" and isinstance(exc, (CheckFailure, AssertionError)) and len(subjects) == 1:
        culprits = subjects  # the check's own verdict on its one subject (set-up failures need explicit evidence)
    if culprits and subjects and not set(culprits) & set(subjects):
        return BLOCKED, culprits
    return FAILED, culprits


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def redact_exception(exc: BaseException | None) -> None:
    """Take every known secret out of an exception (and those it chains to), in place: Allure reads its text."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(getattr(exc, "msg", None), str):
            exc.msg = redact_secrets(exc.msg)  # type: ignore[attr-defined]
        if isinstance(getattr(exc, "_message", None), str):  # Playwright's errors
            exc._message = redact_secrets(exc._message)  # type: ignore[attr-defined]
        if exc.args:
            exc.args = tuple(redact_secrets(a) if isinstance(a, str) else a for a in exc.args)
        exc = exc.__cause__ or exc.__context__


def redact_report(report: pytest.TestReport) -> pytest.TestReport:
    """The report without any known secret: its failure text (kept structured when nothing was found) and sections."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        report.longrepr = (longrepr[0], longrepr[1], redact_secrets(str(longrepr[2])))
    elif longrepr is not None:
        text = str(longrepr)
        clean = redact_secrets(text)
        if clean != text:
            report.longrepr = clean
    report.sections = [(name, redact_secrets(content)) for name, content in report.sections]
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> pytest.TestReport | None:
    """Build the report ourselves, so every other hook (Allure, JUnit, xdist) sees the verdict, and no secret."""
    excinfo = call.excinfo
    if excinfo is not None:
        redact_exception(excinfo.value)
    if excinfo is None or excinfo.errisinstance((pytest.skip.Exception,)) or call.when == "teardown":
        return redact_report(pytest.TestReport.from_item_and_call(item, call))
    exc = excinfo.value
    outcome, culprits = judge(subjects_of(item), exc, call.when)
    named = f"\n  culprit: {', '.join(culprits)}"
    # a failed session fixture re-raises the same exception for every check that uses it: name the culprit once
    if outcome == FAILED and culprits and isinstance(exc, CheckFailure) and not str(exc.msg).endswith(named):
        exc.msg = f"{exc.msg}{named}"
    report = pytest.TestReport.from_item_and_call(item, call)
    report.user_properties += [(OUTCOME, outcome), (CULPRIT, ",".join(culprits))]
    # JUnit writes the properties the item carries at teardown: the verdict and culprit, for its readers
    item.user_properties += [("verdict", outcome), ("culprit", ",".join(culprits))]
    if isinstance(exc, CheckFailure) and exc.escalation:
        report.user_properties.append((ESCALATION, exc.escalation))
    if outcome != FAILED:
        reason = _first_line(str(getattr(exc, "msg", None) or exc))
        words = f"blocked by {', '.join(culprits)}" if outcome == BLOCKED else INCONCLUSIVE
        path, line, _ = item.location
        report.outcome = "skipped"
        report.longrepr = (str(item.path), (line or 0) + 1, f"{words}: {reason.removeprefix('inconclusive: ')}")
    if allure is not None:
        for culprit in culprits:
            allure.dynamic.label("culprit", culprit)
        allure.dynamic.label("verdict", outcome)
        allure.dynamic.tag(outcome if outcome != FAILED else "release-defect")
    return redact_report(report)


def outcome_of(report: pytest.TestReport) -> str | None:
    return dict(report.user_properties).get(OUTCOME)


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, Any] | None:
    outcome = outcome_of(report)
    if outcome == BLOCKED:
        return "blocked", "B", ("BLOCKED", {"yellow": True})
    if outcome == INCONCLUSIVE:
        return "inconclusive", "I", ("INCONCLUSIVE", {"yellow": True})
    return None


class RunVerdict:
    """Counts every final report (on the controller under xdist) and turns them into the run's verdict."""

    RANK = {FAILED: 5, BLOCKED: 4, INCONCLUSIVE: 3, "skipped": 2, "passed": 1}

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.lines: list[tuple[str, str, str, str]] = []  # (outcome, nodeid, culprits, reason)
        self.checks: dict[str, CheckOutcome] = {}  # nodeid -> its worst outcome over its phases, for the sign-off

    def _record(self, report: pytest.TestReport, outcome: str, culprit: str = "", reason: str = "") -> None:
        props = dict(report.user_properties)
        steps = tuple(s for s in str(props.get(STEPS, "")).split(",") if s)
        try:
            links = [tuple(pair) for pair in json.loads(props.get(LINKS) or "[]")]
        except ValueError:
            links = []
        known = self.checks.get(report.nodeid)
        if known is None or self.RANK[outcome] > self.RANK[known.outcome]:
            self.checks[report.nodeid] = CheckOutcome(report.nodeid, outcome, culprit, reason, steps, links)  # type: ignore[arg-type]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.outcome == "rerun":  # pytest-rerunfailures tries again: only the last attempt counts
            return
        outcome = outcome_of(report)
        if report.when == "call" and report.passed:
            self.counts["passed"] += 1
            self._record(report, "passed")
        if outcome is None:
            if report.failed:  # a teardown error, or a failure the plugin could not judge
                self.counts[FAILED] += 1
                reason = _first_line(report.longreprtext)
                self.lines.append((FAILED, report.nodeid, "", reason))
                self._record(report, FAILED, "", reason)
            elif report.skipped:
                self._record(report, "skipped", "", report.longrepr[2] if isinstance(report.longrepr, tuple) else "")
            return
        culprits = dict(report.user_properties).get(CULPRIT, "")
        self.counts[outcome] += 1
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else _first_line(report.longreprtext)
        self.lines.append((outcome, report.nodeid, culprits, reason))
        self._record(report, outcome, culprits, reason)

    @property
    def verdict(self) -> str:
        if self.counts[FAILED] or self.counts[BLOCKED]:
            return "NO-GO"
        if self.counts[INCONCLUSIVE]:
            return "INCONCLUSIVE"
        return "GO"

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if hasattr(session.config, "workerinput") or exitstatus not in (0, 1):
            return
        session.exitstatus = {"NO-GO": EXIT_NO_GO, "INCONCLUSIVE": EXIT_INCONCLUSIVE}.get(self.verdict, 0)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.lines and not self.counts["passed"]:
            return
        terminalreporter.section("polycheck verdict")
        for outcome, nodeid, culprits, reason in self.lines:
            blame = f" [culprit: {culprits}]" if culprits and outcome == FAILED else ""
            terminalreporter.write_line(f"{outcome.upper():12} {nodeid}{blame}: {reason[:300]}", red=outcome == FAILED,
                                        yellow=outcome != FAILED)
        summary = ", ".join(f"{n} {k}" for k, n in sorted(self.counts.items()) if n)
        verdict = self.verdict
        terminalreporter.write_line(f"polycheck: {verdict} ({summary})", bold=True, red=verdict == "NO-GO",
                                    yellow=verdict == "INCONCLUSIVE", green=verdict == "GO")
