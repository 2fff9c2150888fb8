"""The self-tests' env files (tests/support/selftest_env.py): envs/*.toml, local.toml with load-sized budgets that
the product loads, and faults sized so they still fail them."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from polycheck.core.config import load_env
from stack.gateway import UPSTREAM_TIMEOUT
from tests.support import selftest_env
from tests.support.suite_runner import REPO, as_checker


def test_the_selftest_local_env_loads_with_its_budgets_and_nothing_else_changed() -> None:
    config = load_env("local", selftest_env.env_dir(), environ={})
    assert config.http.read_timeout_seconds == selftest_env.READ_TIMEOUT
    assert config.thresholds.health_latency_seconds == selftest_env.HEALTH_BUDGET
    assert config.thresholds.order_confirmation_seconds == selftest_env.CONFIRMATION_BUDGET
    assert config.thresholds.notification_delivery_seconds == selftest_env.DELIVERY_BUDGET
    shipped = (REPO / "envs" / "local.toml").read_text().splitlines()
    ours = selftest_env.local_env_text().splitlines()
    changed = {a.split("=")[0].strip() for a, b in zip(shipped, ours, strict=True) if a != b}
    assert changed == {key for _, key in selftest_env.LOADED_BUDGETS}, changed


def test_the_env_dir_holds_every_shipped_env() -> None:
    assert sorted(p.name for p in selftest_env.env_dir().glob("*.toml")) == sorted(p.name for p in (REPO / "envs").glob("*.toml"))
    assert (selftest_env.env_dir() / "prod.toml").read_text() == (REPO / "envs" / "prod.toml").read_text()


def test_the_faults_stay_above_the_budgets() -> None:
    """A slow answer fails the health budget; a hanging service behind the gateway meets the checker's read timeout
    before the local gateway's own upstream timeout answers 504 (the checks expect the timeout's message)."""
    assert selftest_env.SLOW_ANSWER > selftest_env.HEALTH_BUDGET
    assert UPSTREAM_TIMEOUT.read is not None and selftest_env.READ_TIMEOUT < UPSTREAM_TIMEOUT.read


@pytest.mark.parametrize(("text", "error"), [
    ("[http]\nconnect_timeout_seconds = 1.0\n", "not in the env file: http.read_timeout_seconds"),
    ("[http]\nread_timeout_seconds = 1.0\nconnect_timeout_seconds = 1.0\nread_timeout_seconds = 2.0\n", "http.read_timeout_seconds is set twice"),
    ("[other]\nread_timeout_seconds = 1.0\nconnect_timeout_seconds = 1.0\n", "not in the env file"),
])
def test_a_budget_missing_from_its_table_is_an_error(text: str, error: str) -> None:
    budgets = {("http", "connect_timeout_seconds"): 2.0, ("http", "read_timeout_seconds"): 4.0}
    with pytest.raises(ValueError, match=re.escape(error)):
        selftest_env.with_budgets(text, budgets)


def test_a_budget_keeps_its_comment() -> None:
    assert selftest_env.with_budgets("[t]\na = 1.0   # why\nb = 2\n", {("t", "a"): 3.0}) == "[t]\na = 3.0   # why\nb = 2\n"


def test_a_checker_run_yields_the_cpu_to_the_shop() -> None:
    """The product's runs that self-tests start run at a lower CPU priority than this process (and the shop it
    started): `nice` execs the command, so the pid a test signals is the run's own."""
    probe = subprocess.Popen(as_checker([sys.executable, "-c", "import os; print(os.getpid(), os.nice(0))"]),
                             stdout=subprocess.PIPE, text=True)
    out, _ = probe.communicate(timeout=30)
    pid, niceness = map(int, out.split())
    assert pid == probe.pid
    assert niceness == min(os.nice(0) + 10, 19), (niceness, os.nice(0))


def test_a_run_gets_the_selftest_env_dir_unless_it_names_its_own() -> None:
    ours = f"--env-dir={selftest_env.env_dir()}"
    assert selftest_env.with_env_dir(["-m", "smoke"]) == ["-m", "smoke", ours]
    assert selftest_env.with_env_dir(("--env-dir=/x", "-q")) == ["--env-dir=/x", "-q"]
    assert selftest_env.with_env_dir(["--env-dir", "/x"]) == ["--env-dir", "/x"]
