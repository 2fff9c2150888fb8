"""`python -m polycheck serve` as a subprocess for the self-tests, and a server judging order's health checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from collections.abc import Iterator

import pytest

from polycheck.core.polling import poll
from tests.support import selftest_env
from tests.support.stack_control import StackControl
from tests.support.suite_runner import REPO, as_checker

TOKEN = "self-test-serve-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def serve(tmp_path: Path, env: dict[str, str], *args: str, token: str | None = TOKEN) -> tuple[subprocess.Popen[bytes], str]:
    """Start `polycheck serve` on a free loopback port, with `token` in $POLYCHECK_SERVE_TOKEN; (process, URL) once it listens."""
    ready = tmp_path / "serve.url"
    own = (f"--reports-dir={tmp_path / 'reports'}",)  # the analyses' runs stay in the test's folder, not the checkout's
    args = (*args, *own) if "--" in args else (*args, "--", *own)
    args = tuple(selftest_env.with_env_dir(args))  # the self-tests' budgets, as run_suites gives them
    environ = {**env, "POLYCHECK_SERVE_TOKEN": token} if token is not None else env
    proc = subprocess.Popen(as_checker([sys.executable, "-m", "polycheck", "serve", "--host", "127.0.0.1", "--port", "0",
                                        "--root", str(REPO), "--ready-file", str(ready), *args]),
                            cwd=REPO, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = poll(lambda: ready.read_text() if ready.exists() else "", bool, timeout=20, what="polycheck serve listening")
    return proc, url


@pytest.fixture
def server(stack: StackControl, tmp_path: Path) -> Iterator[str]:
    """A `polycheck serve` whose analysis is order's health checks against the self-tests' local stack."""
    env = {"PATH": "/usr/bin:/bin", "POLYCHECK_STACK_FILE": str(stack.stack_file), "HOME": str(tmp_path)}
    proc, url = serve(tmp_path, env, "--env", "local", "--marker", "smoke", "--", "suites/test_health.py", "-k", "order")
    yield url
    proc.terminate()
    proc.wait(timeout=10)
