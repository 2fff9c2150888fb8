"""pytest's log capture with checks that run in threads of their own: one race mended, here only.

At every phase of every check, pytest's logging plugin enters `catching_logs`, which walks
`logging.root.manager.loggerDict.values()` in Python bytecode to attach its handler to the non-propagating
loggers. Another thread of the run may meanwhile create a logger for the first time (httpcore's in a fan-out
thread; urllib3's, oauthlib's and the kubernetes client's where that client is first imported), and the main
thread's phase fails with
`RuntimeError: dictionary changed size during iteration`: seen in CI as a teardown error of the first check and
"previous item was not torn down properly" on the next (its teardown never ran). Both frames are pytest's, so
the report shows only `contextlib.__enter__`.

The mend gives logging a registry that hands out copies to iterate (a C-level copy, atomic under the GIL, like
`list(d)`): a logger created meanwhile is simply not in that copy. `logging` itself still inserts into it under
its own lock. `tests/unit/test_logging_threads.py` shows pytest's `catching_logs` failing on the plain dict and
passing on this one, and fails loudly if `catching_logs` stops reading the registry (then this module must be
revisited).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any


class LoggerRegistry(dict[str, Any]):
    """`logging.Manager.loggerDict`, iterated over a copy."""

    def values(self) -> list[Any]:  # type: ignore[override]
        return list(super().values())

    def items(self) -> list[tuple[str, Any]]:  # type: ignore[override]
        return list(super().items())

    def __iter__(self) -> Iterator[str]:
        return iter(list(super().__iter__()))


def logging_lock(module: Any = logging) -> AbstractContextManager[Any]:
    """logging's own lock, held while the registry is swapped so that no logger is created meanwhile: a private
    name of the standard library (in every Python from 3.8 to 3.13). Without it, nothing is held: the swap still
    happens at configure, before any thread of the run starts."""
    return getattr(module, "_lock", None) or nullcontext()


def install(manager: logging.Manager | None = None) -> LoggerRegistry:
    """Give logging's manager (the root logger's by default) the copying registry, keeping every logger; once."""
    manager = manager or logging.root.manager
    with logging_lock():
        if not isinstance(manager.loggerDict, LoggerRegistry):
            manager.loggerDict = LoggerRegistry(manager.loggerDict)
        return manager.loggerDict
