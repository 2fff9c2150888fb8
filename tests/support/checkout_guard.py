"""The self-tests write only to temporary folders: a run of `make test` that leaves a new file in the checkout (a run
folder in reports/, a ledger, an audit log, a build folder) fails, naming it. Caches of the tools are allowed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.stack_control import repo_root

ALLOWED = (".venv", ".venv-checkov", "node_modules", ".mypy_cache", ".ruff_cache", ".import_linter_cache", ".pytest_cache",
           "__pycache__", ".egg-info")
SNAPSHOT = pytest.StashKey[frozenset[str]]()


def written(root: Path) -> frozenset[str]:
    """What the checkout holds besides its committed files: git's untracked and ignored entries (folders collapsed),
    (every file under reports/), else the top-level entries and everything under reports/."""
    try:
        entries: set[str] = set()
        # folders collapsed for the tree, every file for reports/ (a new run inside an existing reports/runs/ counts)
        for extra in ([], ["--ignored=traditional", "--untracked-files=all", "--", "reports"]):
            done = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--ignored", *extra], capture_output=True,
                                  text=True, timeout=60, check=True)
            entries |= {line[3:].strip() for line in done.stdout.splitlines() if line[:2] in ("??", "!!")
                        and (extra or not line[3:].startswith("reports/"))}
        # git lists no empty folder: a run killed before it wrote anything leaves only reports/runs/<run>/allure-results/
        reports = root / "reports"
        if reports.is_dir():
            entries |= {str(p.relative_to(root)) + "/" for p in reports.rglob("*") if p.is_dir() and not any(p.iterdir())}
    except (OSError, subprocess.SubprocessError):
        entries = {p.name for p in root.iterdir()} | {str(p.relative_to(root)) for p in (root / "reports").rglob("*")}
    return frozenset(e for e in entries if not any(part in e for part in ALLOWED))


def _controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def pytest_sessionstart(session: pytest.Session) -> None:
    if _controller(session.config):
        session.config.stash[SNAPSHOT] = written(repo_root())


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before = session.config.stash.get(SNAPSHOT, None)
    if before is None:
        return
    new = sorted(written(repo_root()) - before)
    if new:
        terminal = session.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None:
            terminal.ensure_newline()
            terminal.write_line("self-tests wrote into the checkout (they must write to temporary folders only): "
                                + ", ".join(new), red=True, bold=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
