"""Poll, never sleep: wait for an asynchronous outcome with a deadline, and say what was last seen."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Generic, TypeVar
from collections.abc import Callable

T = TypeVar("T")


class PollTimeout(AssertionError):
    """The outcome was not reached before the deadline."""

    def __init__(self, message: str, last: object, attempts: int) -> None:
        super().__init__(message)
        self.last = last
        self.attempts = attempts


class PollStopped(PollTimeout):
    """A terminal state was observed that the outcome can no longer follow (e.g. payment_failed while waiting for confirmed)."""


@dataclass
class Observation(Generic[T]):
    value: T | None = None
    error: BaseException | None = None

    def describe(self, render: Callable[[T], str]) -> str:
        if self.error is not None:
            return f"{type(self.error).__name__}: {self.error}"
        return render(self.value)  # type: ignore[arg-type]


def poll(
    probe: Callable[[], T],
    until: Callable[[T], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.1,
    max_interval: float = 1.0,
    describe: Callable[[T], str] = repr,
    stop: Callable[[T], bool] | None = None,
    retry_on: tuple[type[BaseException], ...] = (),
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `probe` until `until(value)` holds; return that value.

    Raises PollTimeout after `timeout` seconds naming `what`, the attempts and the last observation.
    When `stop(value)` holds, the outcome can no longer be reached: PollStopped is raised at once.
    Exceptions of the types in `retry_on` count as observations and are retried; others propagate.
    The interval grows by half each attempt up to `max_interval`, and never overshoots the deadline.
    """
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    deadline = clock() + timeout
    attempts = 0
    last: Observation[T] = Observation()
    wait = interval
    while True:
        attempts += 1
        asked = clock()
        try:
            value = probe()
        except retry_on as exc:
            last = Observation(error=exc)
        else:
            last = Observation(value=value)
            if until(value):
                return value
            if stop is not None and stop(value):
                raise PollStopped(
                    f"{what}: cannot happen any more, after {attempts} attempt{'s' if attempts != 1 else ''}; "
                    f"observed a terminal state: {describe(value)}",
                    value,
                    attempts,
                )
        remaining = deadline - clock()
        if remaining <= 0:
            raise PollTimeout(
                f"{what}: not reached within {timeout:g} s ({attempts} attempt{'s' if attempts != 1 else ''}); "
                f"last observed: {last.describe(describe)}",
                last.error if last.error is not None else last.value,
                attempts,
            )
        # the next look starts `wait` after this one started: a slow answer (a far-away service) is no reason to
        # wait longer still before asking again
        sleep(min(max(wait - (clock() - asked), 0.0), remaining))
        wait = min(wait * 1.5, max_interval)


def hold(
    probe: Callable[[], T],
    still: Callable[[T], bool],
    *,
    seconds: float,
    what: str,
    describe: Callable[[T], str] = repr,
    interval: float = 0.1,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Observe `probe` for `seconds`: `still(value)` must keep holding (e.g. no second email arrives).

    For a promise about what must NOT happen: it fails at the first observation that breaks it, and
    passes only after watching the whole window (which is the window's purpose, not a fixed sleep).
    """
    deadline = clock() + seconds
    attempts = 0
    while True:
        attempts += 1
        value = probe()
        if not still(value):
            raise PollStopped(f"{what}: broken after {attempts} observation{'s' if attempts != 1 else ''}: {describe(value)}",
                              value, attempts)
        remaining = deadline - clock()
        if remaining <= 0:
            return value
        sleep(min(interval, remaining))
