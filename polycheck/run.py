"""The state of one check run, kept in `config.stash`: config, contract, release, local stack."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from .attribution import ServiceBoard
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
    released: frozenset[str] | None = None  # --released
    since: float | None = None  # --since, as epoch seconds
    board: ServiceBoard = field(default_factory=ServiceBoard)  # services seen hanging in this process
    reaches: dict[str, Any] = field(default_factory=dict)  # the preflight's Reach per service (and the gateway)
    cut_off: str | None = None  # why this runner cannot reach the environment at all (INCONCLUSIVE)


RUN_STATE = pytest.StashKey[RunState]()


def run_state(config: pytest.Config) -> RunState:
    try:
        return config.stash[RUN_STATE]
    except KeyError:
        raise RuntimeError("polycheck is not configured for this run (is the plugin loaded by conftest.py?)") from None
