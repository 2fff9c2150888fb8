"""allure-pytest 2.16 with checks that run in threads of their own: one race mended, here only.

`allure_commons.reporter.ThreadContextItems.cleanup` (called by `close_test` in the main thread after every
check) walks its dict of per-thread contexts in Python bytecode, calling `thread.is_alive()` on each, while a check
running ahead in another thread may add its own context to that dict on its first Allure call: then
`RuntimeError: dictionary changed size during iteration` fails a phase of an unrelated check (seen once with five
runs at once). The replacement takes the keys in one C-level copy first (atomic under the GIL), then drops the
contexts of threads that ended. `tests/unit/test_allure_threads.py` fails on the original and passes on this;
it also fails loudly when allure-pytest no longer has the method (then this module must be revisited).
"""

from __future__ import annotations

from typing import Any


def cleanup(self: Any) -> None:
    """`ThreadContextItems.cleanup`, iterating over a copy of the per-thread contexts."""
    contexts = self._thread_context
    for thread in [thread for thread in list(contexts) if not thread.is_alive()]:
        contexts.pop(thread, None)


def install() -> bool:
    """Replace the method (once); False when allure-pytest is not installed."""
    try:
        from allure_commons.reporter import ThreadContextItems
    except ImportError:  # pragma: no cover - the project installs allure-pytest
        return False
    if not hasattr(ThreadContextItems, "cleanup"):
        raise RuntimeError("allure_commons.reporter.ThreadContextItems.cleanup is gone: revisit "
                           "polycheck/pytest_plugin/allure_threads.py for this allure-pytest")
    ThreadContextItems.cleanup = cleanup  # type: ignore[method-assign]
    return True
