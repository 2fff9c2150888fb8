"""What a failing check leaves in the report: its HTTP exchanges (secrets redacted) attached to its Allure result."""

from __future__ import annotations

from typing import Any, Generator

import pytest

from ..http import ExchangeLog

try:
    import allure
except ImportError:  # allure-pytest is optional for the library; the project installs it
    allure = None


REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


def check_failed_so_far(item: pytest.Item) -> bool:
    """True when the check's set-up or body failed (for fixtures deciding what to keep at teardown)."""
    reports = item.stash.get(REPORTS, {})
    return any(r.failed for r in reports.values())


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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    item.stash.setdefault(REPORTS, {})[report.when] = report
    if report.when != "call" or not report.failed:
        return
    log = getattr(item, "funcargs", {}).get("exchange_log")
    if isinstance(log, ExchangeLog):
        for index, exchange in enumerate(log.exchanges, start=1):
            verdict = exchange.error or f"HTTP {exchange.status}"
            attach_text(f"{index}. {exchange.method} {exchange.url} -> {verdict}", exchange.as_text())
