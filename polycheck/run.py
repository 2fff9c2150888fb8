"""The state of one check run, kept in `config.stash`: config, contract, release, local stack."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from .config import EnvConfig
from .contract import MetricsContract
from .localstack import LocalStack, StackInfo


@dataclass
class RunState:
    config: EnvConfig
    contract: MetricsContract
    run_id: str
    release_version: str | None = None
    rollback_mode: str = "dry-run"
    canary_step: int | None = None
    prometheus: Any = None  # a LocalPrometheus started for a local run
    prometheus_url: str = ""
    stack: LocalStack | None = None
    stack_info: StackInfo | None = None


RUN_STATE = pytest.StashKey[RunState]()


def run_state(config: pytest.Config) -> RunState:
    try:
        return config.stash[RUN_STATE]
    except KeyError:
        raise RuntimeError("polycheck is not configured for this run (is the plugin loaded by conftest.py?)") from None
