"""Each check's verdict (`polycheck.core.verdict.Verdict`), built in one place, and the run's verdict.

- failed: the culprit the evidence names is one of the services the check judges (its subjects);
- blocked: the culprit is a service the check only depends on (auth for the order flow): the check
  could not do its work, its outcome is "blocked by auth", and it rolls nothing back;
- inconclusive: the checker could not measure (see `failures.inconclusive`).

`verdict_of` builds the verdict from the check and what it raised, for a check in its turn (through the
`pytest_runtest_makereport` wrapper below) and for one that ran ahead (the rollback plugin calls it the moment
the check fails) alike; the report then carries it as one user property. The run's verdict is GO (exit 0),
NO-GO (exit 1: a check failed or was blocked) or INCONCLUSIVE (exit 6: nothing failed, but something could not be
measured, or a runbook step the selection covers did not run: its checks all skipped). A check that passed only on
a rerun is FLAKY: it counts as passed, and says so everywhere it is reported, with its first failure's reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any
from collections.abc import Generator

import pytest

from polycheck.core.failures import CheckFailure, culprits_of, is_inconclusive
from polycheck.core.redact import redact_secrets
from polycheck.signoff.links import evidence_links
from polycheck.core.steps import steps_of
from polycheck.signoff.grouping import group_by_reason
from polycheck.signoff.summary import CheckOutcome, NotRun, not_run_steps
from polycheck.signoff.results import RAN_LABEL
from polycheck.core.verdict import BLOCKED, FAILED, FLAKY, INCONCLUSIVE, PASSED, REASON_LIMIT, SKIPPED, Verdict, first_line, unique
from polycheck.pytest_plugin.cut_off import pointing_to_signoff
from polycheck.pytest_plugin.markers import escalation_of, may_roll_back
from polycheck.pytest_plugin.state import board_of, run_of

EXIT_NO_GO = 1
EXIT_INCONCLUSIVE = 6
SUBJECT_PARAMS = ("service", "routed_service", "canary_service")

try:
    import allure
except ImportError:  # pragma: no cover - the project installs allure-pytest
    allure = None  # type: ignore[assignment]


@dataclass(frozen=True)
class CheckFacts:
    """What a check's markers and parameters say of it, read once at collection."""

    subjects: tuple[str, ...]
    may_roll_back: bool
    escalation: str | None
    steps: tuple[str, ...]


FACTS = pytest.StashKey[CheckFacts]()
FIRST_FAILURE = pytest.StashKey[str]()  # the first failed attempt's reason, kept for a check that passes on a rerun


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
    return unique(names)


def facts_of(item: pytest.Item) -> CheckFacts:
    facts = item.stash.get(FACTS, None)
    if facts is None:
        facts = CheckFacts(subjects_of(item), may_roll_back(item), escalation_of(item),
                           steps_of(mark.name for mark in item.iter_markers()))
        item.stash[FACTS] = facts
    return facts


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


def _named(culprits: tuple[str, ...]) -> str:
    """`culprit: order`; for candidates the evidence cannot tell apart, `culprit: order or inventory`."""
    return f"\n  culprit: {' or '.join(culprits)}"


def _message(exc: BaseException) -> str:
    return str(getattr(exc, "msg", None) or exc)


def _links(item: pytest.Item, text: str, culprits: tuple[str, ...], stop: float) -> tuple[tuple[str, str], ...]:
    """Links to Grafana, Jaeger (trace id) and Loki (request id) from the env's [links]."""
    try:
        run = run_of(item.config)
    except RuntimeError:
        return ()
    links = evidence_links(run.config.links, text, service=culprits[0] if culprits else None, env=run.config.name,
                           failed_at_ms=int(stop * 1000))
    return tuple((str(name), str(url)) for name, url in links)


def verdict_of(item: pytest.Item, exc: BaseException | None, when: str, *, start: float, stop: float,
               skipped: bool = False) -> Verdict:
    """The verdict of one phase of `item`, from what it raised (None: it passed). The exception is redacted and,
    for a failure with a culprit, names it at its end (once, also when a session fixture re-raises it)."""
    facts = facts_of(item)
    base = Verdict(PASSED, subjects=facts.subjects, may_roll_back=facts.may_roll_back, steps=facts.steps,
                   escalation=facts.escalation, start=start, stop=stop, phase=when,
                   roll_back_why="marked rollback" if facts.may_roll_back else "not marked rollback")
    if exc is None:
        attempt = int(getattr(item, "execution_count", 1) or 1)  # pytest-rerunfailures counts the attempts
        first = item.stash.get(FIRST_FAILURE, None)
        if when == "call" and attempt > 1 and first is not None:
            return base.with_(outcome=FLAKY, reason=f"passed on attempt {attempt}; first failure: {first}"[:REASON_LIMIT])
        return base
    redact_exception(exc)
    if skipped or isinstance(exc, pytest.skip.Exception):
        return base.with_(outcome=SKIPPED, reason=first_line(_message(exc)))
    if when == "teardown":
        return base.with_(outcome=FAILED, reason=_message(exc).strip()[:REASON_LIMIT])
    outcome, culprits = judge(facts.subjects, exc, when)
    shared = _shared_hang(item) if outcome in (FAILED, BLOCKED) else None
    if shared:
        return base.with_(outcome=INCONCLUSIVE, reason=f"{shared} — this check: {first_line(_message(exc))}"[:REASON_LIMIT],
                          shared_cause=shared)
    text = _message(exc).strip()
    named = _named(culprits)
    reason = text.removesuffix(named.strip()).rstrip() if text.endswith(named.strip()) else text
    if outcome == FAILED and culprits and isinstance(exc, CheckFailure) and not str(exc.msg).endswith(named):
        exc.msg = f"{exc.msg}{named}"
    escalation = (exc.escalation if isinstance(exc, CheckFailure) else None) or facts.escalation
    if when == "call" and FIRST_FAILURE not in item.stash:
        item.stash[FIRST_FAILURE] = first_line(reason)[:500]
    return base.with_(outcome=outcome, culprits=culprits, reason=reason[:REASON_LIMIT], escalation=escalation,
                      candidates=culprits if outcome == FAILED and len(culprits) > 1 else (),
                      dependency=(exc.dependency or "") if isinstance(exc, CheckFailure) else "",
                      links=_links(item, text, culprits, stop))


def _shared_hang(item: pytest.Item) -> str | None:
    """Most services seen hanging in this run: a shared cause (overload, the network), so no failure is the release's."""
    try:
        hanging = board_of(item.config).snapshot()
        known = run_of(item.config).config.service_names
    except (RuntimeError, KeyError):
        return None
    if len(hanging) < max(3, len(known) // 2 + 1):
        return None
    return (f"common cause: {len(hanging)} of {len(known)} services timed out in this run ({', '.join(sorted(hanging))}): "
            f"overload, the network or the checker's own load, not the release")


def _times(item: pytest.Item, call: pytest.CallInfo[Any]) -> tuple[float, float]:
    """When the phase really ran: a check that ran ahead, then (its body ran in another thread, earlier)."""
    from polycheck.pytest_plugin.concurrent import AHEAD

    ahead = item.stash.get(AHEAD, None)
    if ahead is not None and call.when == "call" and ahead.done.is_set():
        return ahead.started, ahead.stopped
    return call.start, call.stop


def exchange_log_of(item: pytest.Item) -> Any:
    """The check's exchange log: its scope's, else its `exchange_log` fixture's (None when it used neither)."""
    funcargs = getattr(item, "funcargs", {})
    scope = funcargs.get("check_scope")
    return scope.log if scope is not None else funcargs.get("exchange_log")


def _evidence_window(item: pytest.Item, start: float, stop: float) -> tuple[float, float]:
    """From the first request the check's evidence came from (sent early, for some) to its body's end."""
    log = exchange_log_of(item)
    sent = [e for e in getattr(log, "exchanges", []) if getattr(e, "sent_at", 0.0) > 0]
    if not sent:
        return start, stop
    return min(start, *(e.sent_at for e in sent)), max(stop, *(e.sent_at + e.elapsed for e in sent))


def _described(verdict: Verdict) -> str:
    """A blocked or inconclusive check's one line (it is shown as skipped, with this reason)."""
    words = f"blocked by {' or '.join(verdict.culprits)}" if verdict.outcome == BLOCKED else INCONCLUSIVE
    return f"{words}: {first_line(verdict.reason).removeprefix('inconclusive: ')}"


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Judge the phase before pytest builds its report (so its text is redacted and names the culprit), then carry
    the verdict in the report: innermost of the wrappers, so every other hook (Allure, JUnit, xdist) sees it."""
    start, stop = _times(item, call)
    exc = call.excinfo.value if call.excinfo is not None else None
    verdict = verdict_of(item, exc, call.when, start=start, stop=stop)
    report = yield
    if allure is not None and call.when == "call":
        shown = _evidence_window(item, start, stop)
        if shown != (call.start, call.stop):
            # it ran ahead, or its requests were sent early in the run's fan-out: the report shows when its body and
            # its requests really ran, not the instant of its turn (read by signoff.results)
            allure.dynamic.label(RAN_LABEL, f"{int(shown[0] * 1000)}-{int(shown[1] * 1000)}")
    if verdict.outcome != PASSED or call.when == "call":  # (JUnit writes the teardown's properties: no "passed" there)
        verdict.attach(report.user_properties)
    if verdict.outcome in (FAILED, BLOCKED, INCONCLUSIVE, FLAKY) and call.when != "teardown":
        # JUnit writes the properties the item carries at teardown: the verdict and culprit, for its readers
        item.user_properties += [("verdict", verdict.outcome), ("culprit", verdict.culprit)]
    if verdict.outcome in (BLOCKED, INCONCLUSIVE):
        _path, line, _ = item.location
        report.outcome = "skipped"
        report.longrepr = (str(item.path), (line or 0) + 1, _described(verdict))
    if allure is not None and verdict.outcome in (FAILED, BLOCKED, INCONCLUSIVE, FLAKY) and call.when != "teardown":
        for culprit in verdict.culprits:
            allure.dynamic.label("culprit", culprit)
        allure.dynamic.label("verdict", verdict.outcome)
        allure.dynamic.tag(verdict.outcome if verdict.outcome != FAILED else "release-defect")
    return redact_report(report)


def outcome_of(report: pytest.TestReport) -> str | None:
    """The outcome the plugin judged a failing phase to have (None for a passing or skipped phase, or no verdict)."""
    verdict = Verdict.of(report)
    return verdict.outcome if verdict is not None and verdict.outcome in (FAILED, BLOCKED, INCONCLUSIVE) else None


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, Any] | None:
    outcome = outcome_of(report)
    if outcome == BLOCKED:
        return "blocked", "B", ("BLOCKED", {"yellow": True})
    if outcome == INCONCLUSIVE:
        return "inconclusive", "I", ("INCONCLUSIVE", {"yellow": True})
    verdict = Verdict.of(report) if report.when == "call" and report.passed else None
    if verdict is not None and verdict.outcome == FLAKY:
        return "flaky", "f", ("FLAKY", {"yellow": True})
    return None


@dataclass(frozen=True)
class NotRunPolicy:
    """Which covered steps may end NOT RUN without making the run INCONCLUSIVE."""

    allowed: frozenset[str] = frozenset()
    local: bool = False

    @classmethod
    def of(cls, run: Any) -> NotRunPolicy:
        return cls(frozenset(run.allowed_not_run), bool(run.config.environment.local_stack))


class RunVerdict:
    """Counts every final report (on the controller under xdist) and turns them into the run's verdict."""

    RANK = {FAILED: 6, BLOCKED: 5, INCONCLUSIVE: 4, SKIPPED: 3, FLAKY: 2, PASSED: 1}

    def __init__(self, policy: NotRunPolicy | None = None, *, cut_off: str | None = None) -> None:
        self.policy = policy or NotRunPolicy()
        self.cut_off = cut_off  # why the run could judge nothing (Run.cut_off): said once, by the sign-off
        self.counts: Counter[str] = Counter()
        self.lines: list[tuple[str, str, str, str]] = []  # (outcome, nodeid, culprits, reason)
        self.checks: dict[str, CheckOutcome] = {}  # nodeid -> its worst outcome over its phases, for the sign-off

    def _record(self, nodeid: str, verdict: Verdict | None, outcome: str, reason: str = "") -> None:
        known = self.checks.get(nodeid)
        if known is None or self.RANK[outcome] > self.RANK[known.outcome]:
            steps = verdict.steps if verdict is not None else ()
            links = [tuple(pair) for pair in verdict.links] if verdict is not None else []
            culprit = verdict.culprit if verdict is not None and outcome != SKIPPED else ""
            self.checks[nodeid] = CheckOutcome(nodeid, outcome, culprit, reason, steps, links)  # type: ignore[arg-type]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if str(report.outcome) == "rerun":  # pytest-rerunfailures tries again: only the last attempt counts
            return
        verdict = Verdict.of(report)
        outcome = outcome_of(report)
        if report.when == "call" and report.passed:
            passed = FLAKY if verdict is not None and verdict.outcome == FLAKY else PASSED
            self.counts[passed] += 1
            self._record(report.nodeid, verdict, passed, verdict.reason if passed == FLAKY and verdict else "")
            if passed == FLAKY:
                self.lines.append((FLAKY, report.nodeid, "", first_line(verdict.reason if verdict else "")))
        if outcome is None:
            if report.failed:  # a teardown error, or a failure the plugin could not judge
                self.counts[FAILED] += 1
                reason = first_line(verdict.reason if verdict is not None and verdict.reason else report.longreprtext)
                self.lines.append((FAILED, report.nodeid, "", reason))
                self._record(report.nodeid, None if verdict is None else verdict.with_(culprits=()), FAILED, reason)
            elif report.skipped:
                self._record(report.nodeid, verdict, SKIPPED,
                             report.longrepr[2] if isinstance(report.longrepr, tuple) else "")
            return
        assert verdict is not None
        self.counts[outcome] += 1
        reason = _described(verdict) if outcome != FAILED else first_line(verdict.reason)
        self.lines.append((outcome, report.nodeid, verdict.culprit, reason))
        self._record(report.nodeid, verdict, outcome, reason)

    def not_run(self) -> list[NotRun]:
        """The covered runbook steps whose checks did not run (GO needs checks that ran)."""
        return not_run_steps(list(self.checks.values()), allowed=self.policy.allowed, local=self.policy.local)

    @property
    def verdict(self) -> str:
        if self.counts[FAILED] or self.counts[BLOCKED]:
            return "NO-GO"
        if self.counts[INCONCLUSIVE] or any(not missing.excuse for missing in self.not_run()):
            return "INCONCLUSIVE"
        return "GO"

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if hasattr(session.config, "workerinput") or exitstatus not in (0, 1):
            return
        session.exitstatus = {"NO-GO": EXIT_NO_GO, "INCONCLUSIVE": EXIT_INCONCLUSIVE}.get(self.verdict, 0)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.lines and not self.counts[PASSED]:
            return
        terminalreporter.section("polycheck verdict")
        said = ((outcome, nodeid, culprits if outcome == FAILED else "", pointing_to_signoff(reason, self.cut_off))
                for outcome, nodeid, culprits, reason in self.lines)
        for group in group_by_reason(said):  # checks sharing a reason: one line with their count
            for line in group.lines(check_chars=300):
                terminalreporter.write_line(line, red=group.outcome == FAILED, yellow=group.outcome != FAILED)
        for missing in self.not_run():
            terminalreporter.write_line(missing.line(), yellow=True)
        summary = ", ".join(f"{n} {k}" for k, n in sorted(self.counts.items()) if n)
        verdict = self.verdict
        terminalreporter.write_line(f"polycheck: {verdict} ({summary})", bold=True, red=verdict == "NO-GO",
                                    yellow=verdict == "INCONCLUSIVE", green=verdict == "GO")
