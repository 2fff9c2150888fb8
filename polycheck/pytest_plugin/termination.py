"""SIGTERM is handled like Ctrl-C: the run stops where it is, every finaliser runs (synthetic orders cancelled,
payments refunded, the sign-off written), and the sign-off says INCONCLUSIVE (terminated).

Kubernetes sends SIGTERM at a Job's activeDeadlineSeconds, on an eviction or a node drain, then SIGKILL after the
pod's terminationGracePeriodSeconds: the CronJob leaves room for the finalisers. A second SIGTERM while they run
is ignored (they are what the grace period is for); SIGKILL is the sweeper's case (polycheck.core.leftovers).
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

import pytest

TERMINATED = pytest.StashKey[str]()


def install(config: pytest.Config) -> None:
    """In the main thread of each pytest process (the controller and each xdist worker)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if TERMINATED in config.stash:
            return  # finalising already: let them finish within the grace period
        config.stash[TERMINATED] = signal.Signals(signum).name
        os.write(2, b"polycheck: SIGTERM: stopping the run; the finalisers (cleanup, sign-off) run now\n")
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, on_sigterm)


def pytest_terminal_summary(terminalreporter: object, config: pytest.Config) -> None:
    stopped = terminated_by(config)
    if stopped:
        terminalreporter.write_line(  # type: ignore[attr-defined]
            f"polycheck: {stopped}: the run was stopped; its finalisers ran (cleanup, sign-off)", yellow=True, bold=True)


def terminated_by(config: pytest.Config) -> str:
    """The signal that stopped the run ("" when none did)."""
    return config.stash.get(TERMINATED, "")
