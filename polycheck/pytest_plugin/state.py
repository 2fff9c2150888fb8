"""What a pytest process keeps for the run: the frozen Run, and the resources it owns (processes, the board)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from polycheck.core.attribution import ServiceBoard
from polycheck.doubles.customers import Traffic
from polycheck.doubles.localstack import LocalStack
from polycheck.doubles.promserver import LocalPrometheus
from polycheck.scope.run import Run


@dataclass
class Resources:
    """Owned by one pytest process: the local stack and Prometheus it started, the services it saw hanging."""

    stack: LocalStack | None = None
    prometheus: LocalPrometheus | None = None
    customers: Traffic | None = None  # the started local stack's customers (polycheck.doubles.customers)
    board: ServiceBoard = field(default_factory=ServiceBoard)

    def stop(self) -> None:
        if self.customers is not None:
            self.customers.__exit__(None, None, None)
            self.customers = None
        if self.prometheus is not None:
            self.prometheus.stop()
            self.prometheus = None
        if self.stack is not None:
            self.stack.stop()
            self.stack = None


RUN = pytest.StashKey[Run]()
RESOURCES = pytest.StashKey[Resources]()


def run_of(config: pytest.Config) -> Run:
    try:
        return config.stash[RUN]
    except KeyError:
        raise RuntimeError("polycheck is not configured for this run (is the plugin loaded by conftest.py?)") from None


def board_of(config: pytest.Config) -> ServiceBoard:
    return config.stash[RESOURCES].board


def is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")
