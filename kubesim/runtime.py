"""Time for the simulated controllers: an event-loop scheduler (or an instant one for seeding) and a clock."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import heapq
import itertools
import threading
import time
from typing import Any, TypeVar
from collections.abc import Callable, Hashable

F = TypeVar("F", bound=Callable[..., Any])


def on_loop(fn: F) -> F:
    """Run a method of an object with `_owner_loop() -> (loop, thread id)` on that loop's thread, waiting for the
    result, when called from another thread while the loop runs; otherwise call it directly."""

    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        loop, thread = self._owner_loop()
        if loop is None or not loop.is_running() or threading.get_ident() == thread:
            return fn(self, *args, **kwargs)
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn(self, *args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return future.result(timeout=30)

    return wrapper  # type: ignore[return-value]


class Clock:
    """Wall-clock time for timestamps and a monotonic clock for deadlines.

    `offset` shifts wall time (the seed writes its history in the past). While the scheduler runs instantly,
    both clocks follow its virtual time instead of the real one.
    """

    def __init__(self) -> None:
        self.offset = 0.0
        self.virtual: float | None = None
        self._virtual_origin = (0.0, 0.0)  # (real wall time, virtual time) when virtual time began

    def now(self) -> float:
        if self.virtual is not None:
            wall, start = self._virtual_origin
            return wall + (self.virtual - start) + self.offset
        return time.time() + self.offset

    def monotonic(self) -> float:
        return self.virtual if self.virtual is not None else time.monotonic()

    def start_virtual(self) -> None:
        self.virtual = time.monotonic()
        self._virtual_origin = (time.time(), self.virtual)

    def stop_virtual(self) -> None:
        self.virtual = None


class Scheduler:
    """Runs controller work on the simulator's event loop after a delay, at most one pending call per key.

    Before a loop is attached, calls wait in a backlog and are scheduled when `attach` runs. In instant mode
    (used to build the seed) every call runs at once, in order, ignoring delays.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.loop: asyncio.AbstractEventLoop | None = None
        self._handles: dict[Hashable, asyncio.TimerHandle] = {}
        self._backlog: dict[Hashable, tuple[float, Callable[..., Any], tuple[Any, ...]]] = {}
        self._instant: list[tuple[float, int, Hashable]] | None = None
        self._instant_calls: dict[Hashable, tuple[int, Callable[..., Any], tuple[Any, ...]]] = {}
        self._seq = itertools.count()

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        backlog, self._backlog = self._backlog, {}
        for key, (delay, fn, args) in backlog.items():
            self.later(delay, key, fn, *args)

    def later(self, delay: float, key: Hashable, fn: Callable[..., Any], *args: Any, replace: bool = False) -> None:
        """Call fn(*args) after `delay` s; a call already pending under `key` wins unless `replace`."""
        if self._instant is not None:
            if key in self._instant_calls and not replace:
                return
            seq = next(self._seq)
            self._instant_calls[key] = (seq, fn, args)
            heapq.heappush(self._instant, (self.clock.monotonic() + max(0.0, delay), seq, key))
            return
        if self.loop is None:
            if replace or key not in self._backlog:
                self._backlog[key] = (delay, fn, args)
            return
        pending = self._handles.get(key)
        if pending is not None and not pending.cancelled():
            if not replace:
                return
            pending.cancel()
        self._handles[key] = self.loop.call_later(max(0.0, delay), self._run, key, fn, args)

    def cancel(self, key: Hashable) -> None:
        self._instant_calls.pop(key, None)
        handle = self._handles.pop(key, None)
        if handle is not None:
            handle.cancel()
        self._backlog.pop(key, None)

    def cancel_all(self) -> None:
        for handle in self._handles.values():
            handle.cancel()
        self._handles.clear()
        self._backlog.clear()

    def _run(self, key: Hashable, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self._handles.pop(key, None)
        fn(*args)

    def run_instantly(self, work: Callable[[], Any], *, limit: int = 100000) -> None:
        """Run `work`, then every call it schedules (and those they schedule) in order of their due time on a
        virtual clock that jumps from one to the next, until nothing is left: a discrete-event simulation."""
        self._instant, self._instant_calls = [], {}
        self.clock.start_virtual()
        try:
            work()
            steps = 0
            while self._instant:
                due, seq, key = heapq.heappop(self._instant)
                call = self._instant_calls.get(key)
                if call is None or call[0] != seq:
                    continue
                del self._instant_calls[key]
                self.clock.virtual = max(self.clock.virtual or due, due)
                call[1](*call[2])
                steps += 1
                if steps > limit:
                    raise RuntimeError("the simulated controllers did not settle")
        finally:
            self._instant, self._instant_calls = None, {}
            self.clock.stop_virtual()
