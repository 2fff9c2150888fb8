"""What a check leaves in the report: Allure labels a reviewer can read (epic = runbook step, feature = suite,
story = the runbook line, severity), and for a failure its HTTP exchanges (secrets redacted) and links to its
evidence in Grafana, Jaeger and Loki."""

from __future__ import annotations

from typing import Any
from collections.abc import Generator

import pytest

from polycheck.clients.http import ExchangeLog
from polycheck.core.steps import epic_of, feature_of, story_of
from polycheck.core.verdict import Verdict
from polycheck.pytest_plugin.markers import may_roll_back
from polycheck.pytest_plugin.verdicts import BLOCKED, INCONCLUSIVE, exchange_log_of, outcome_of, subjects_of
from polycheck.signoff.results import JUDGES_LABEL, NODEID_LABEL

try:
    import allure
except ImportError:  # allure-pytest is optional for the library; the project installs it
    allure = None  # type: ignore[assignment]


REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


def check_failed_so_far(item: pytest.Item) -> bool:
    """True when the check's set-up or body failed or was blocked (for fixtures deciding what to keep at teardown)."""
    reports = item.stash.get(REPORTS, {})
    return any(r.failed or outcome_of(r) == BLOCKED for r in reports.values())


def attach_file(name: str, path: str, extension: str) -> None:
    """Attach a file Allure has no type for (e.g. a Playwright trace zip), keeping its extension."""
    if allure is not None:
        allure.attach.file(path, name=name, extension=extension)


def attach_bytes(name: str, data: bytes, kind: str) -> None:
    if allure is not None:
        allure.attach(data, name=name, attachment_type=getattr(allure.attachment_type, kind))


def attach_text(name: str, text: str) -> None:
    if allure is not None:
        allure.attach(text, name=name, attachment_type=allure.attachment_type.TEXT)


def severity_of(item: pytest.Item, markers: set[str]) -> str:
    """blocker: marked rollback (at the run's end, blocker stays only where this run's purpose and release scope let
    a failure roll back a service the check judges: signoff.results); critical: smoke; else normal."""
    if may_roll_back(item):
        return "blocker"
    return "critical" if "smoke" in markers else "normal"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each check's Allure labels come from the runbook."""
    if allure is None:
        return
    for item in items:
        markers = {mark.name for mark in item.iter_markers()}
        function = getattr(item, "function", None)
        module = getattr(item, "module", None)
        item.add_marker(allure.epic(epic_of(markers)))
        item.add_marker(allure.feature(feature_of(getattr(module, "__doc__", None), getattr(module, "__name__", item.nodeid))))
        item.add_marker(allure.story(story_of(getattr(function, "__doc__", None), getattr(function, "__name__", item.name))))
        item.add_marker(allure.severity(severity_of(item, markers)))
        item.add_marker(allure.label(NODEID_LABEL, item.nodeid))
        if may_roll_back(item):
            item.add_marker(allure.label(JUDGES_LABEL, ",".join(subjects_of(item))))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    item.stash.setdefault(REPORTS, {})[report.when] = report
    judged = outcome_of(report)
    if report.when == "teardown" or not (report.failed or judged in (BLOCKED, INCONCLUSIVE)):
        return
    _link_evidence(item, report)
    if report.when != "call" or not report.failed:
        return
    log = exchange_log_of(item)
    if isinstance(log, ExchangeLog):
        for index, exchange in enumerate(log.exchanges, start=1):
            verdict = exchange.error or f"HTTP {exchange.status}"
            attach_text(f"{index}. {exchange.method} {exchange.url} -> {verdict}", exchange.as_text())


def _link_evidence(item: pytest.Item, report: pytest.TestReport) -> None:
    """The verdict's links to Grafana, Jaeger (trace id) and Loki (request id), in Allure."""
    verdict = Verdict.of(report)
    if allure is not None and verdict is not None:
        for name, url in verdict.links:
            allure.dynamic.link(url, name=name)
