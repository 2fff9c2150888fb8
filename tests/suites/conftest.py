"""Fixtures of the suite-level self-tests that read a real Prometheus."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from collections.abc import Iterator

import pytest

from polycheck.doubles.promserver import LocalPrometheus, wait_for_data
from tests.support.selftest_env import local_env_text


@pytest.fixture(scope="module")
def prometheus(local_stack: Any) -> Iterator[LocalPrometheus]:
    reason = LocalPrometheus.available()
    if reason:
        pytest.skip(reason)
    server = LocalPrometheus.start(local_stack.info.services, scrape_interval="1s")
    with server.client() as client:
        wait_for_data(client, "sum(rate(http_requests_total[15s]))", timeout=30)
    yield server
    server.stop()


@pytest.fixture
def env_dir(tmp_path: Path, prometheus: LocalPrometheus) -> Path:
    """envs/local.toml pointed at the module's Prometheus, so its history spans the fault."""
    text = local_env_text().replace('[prometheus]\n', f'[prometheus]\nurl = "{prometheus.url}"\n')
    (tmp_path / "local.toml").write_text(text)
    return tmp_path
