"""The race mended by polycheck.pytest_plugin.logging_threads: a logger created (by a check running ahead in its
own thread) while pytest's log capture walks logging's registry of loggers at a phase of another check."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
from _pytest.logging import LogCaptureHandler, catching_logs

from polycheck.pytest_plugin import logging_threads
from tests.support.suite_runner import run_suites


class CreatesAnotherLogger(logging.Logger):
    """A non-propagating logger; asked whether it propagates, it lets "another thread" create a logger meanwhile
    (exactly where a thread switch lands in pytest's walk)."""

    def __init__(self, registry: dict[str, logging.Logger]) -> None:
        super().__init__("polycheck.test.walked")
        self.registry, self.asked = registry, 0

    @property  # type: ignore[override]
    def propagate(self) -> bool:
        self.asked += 1
        self.registry[f"polycheck.test.created.{self.asked}"] = logging.Logger("created meanwhile")
        return False

    @propagate.setter
    def propagate(self, value: bool) -> None:
        pass


@contextmanager
def root_registry(registry: dict[str, logging.Logger]) -> Iterator[None]:
    """The root manager's registry swapped for the block only (pytest's own log capture of this test's teardown
    walks the real one again)."""
    manager = logging.root.manager
    real = manager.loggerDict
    manager.loggerDict = registry
    try:
        yield
    finally:
        manager.loggerDict = real


def enter_pytest_log_capture() -> None:
    with catching_logs(LogCaptureHandler(), level=None):
        pass


def test_pytest_log_capture_fails_on_a_plain_registry_when_a_logger_is_created_meanwhile() -> None:
    plain: dict[str, logging.Logger] = {}
    plain["walked"] = CreatesAnotherLogger(plain)
    with root_registry(plain), pytest.raises(RuntimeError, match="dictionary changed size during iteration"):
        enter_pytest_log_capture()
    assert plain["walked"].asked >= 1  # type: ignore[attr-defined]


def test_pytest_log_capture_passes_on_the_copying_registry_and_keeps_the_new_logger() -> None:
    copying = logging_threads.LoggerRegistry()
    walked = CreatesAnotherLogger(copying)
    copying["walked"] = walked
    with root_registry(copying):
        enter_pytest_log_capture()
    assert walked.asked == 1, "pytest's catching_logs no longer reads logging's registry: revisit logging_threads.py"
    assert "polycheck.test.created.1" in copying  # created meanwhile, kept (only the walk used a copy)


def test_install_keeps_every_logger_and_is_done_once() -> None:
    manager = logging.Manager(logging.RootLogger(logging.WARNING))
    first = manager.getLogger("polycheck.test.before")
    registry = logging_threads.install(manager)
    assert isinstance(registry, logging_threads.LoggerRegistry)
    assert manager.getLogger("polycheck.test.before") is first  # the same logger, not a second one
    assert logging_threads.install(manager) is registry
    assert sorted(manager.loggerDict) == ["polycheck", "polycheck.test", "polycheck.test.before"]


def test_the_swap_holds_loggings_own_lock_and_nothing_where_logging_has_none() -> None:
    assert logging_threads.logging_lock() is logging._lock  # type: ignore[attr-defined]
    with logging_threads.logging_lock(SimpleNamespace()) as held:  # a logging without that private name
        assert held is None


REPORTS_REGISTRY = """
import logging

def pytest_collection_finish(session):
    print("registry:", type(logging.root.manager.loggerDict).__name__)
"""


def test_the_checker_runs_with_the_copying_registry(tmp_path: Path) -> None:
    """The polycheck plugin installs it before any check runs (collection ends before the first set-up)."""
    (tmp_path / "reports_registry.py").write_text(REPORTS_REGISTRY)
    run = run_suites("-p", "reports_registry", "--co", "-q", "-m", "smoke", extra_env={"PYTHONPATH": str(tmp_path)},
                     timeout=120)
    assert run.returncode == 0, run.output
    assert "registry: LoggerRegistry" in run.output, run.output
