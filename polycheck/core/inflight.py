"""The checker's requests to the shop that are out now, by when each was sent.

A failure is evidence of one moment; the requests other checks had already sent at that moment are evidence of
the same moment, not yet in. A shared cause (a gateway or network hanging) shows as those requests coming back
late, all at once, on the clients' own timeouts: the rollback's group wait waits for them (bounded by those
timeouts), so that the first service to fail is not rolled back for a cause its neighbours' answers reveal a
few seconds later.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class InFlight:
    """Requests out now (thread-safe): `sent()` around each request; `wait_for_sent_before(moment, timeout)`
    blocks until every request sent before `moment` has its outcome, or `timeout` has passed."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._out: dict[int, float] = {}  # token -> when the request was sent (clock)
        self._next = 0
        self._changed = threading.Condition()

    @contextmanager
    def sent(self) -> Iterator[None]:
        """One request, out from now until the block ends (its answer, its error, what the caller asks after it)."""
        with self._changed:
            token, self._next = self._next, self._next + 1
            self._out[token] = self.clock()
        try:
            yield
        finally:
            with self._changed:
                del self._out[token]
                self._changed.notify_all()

    def out_since_before(self, moment: float) -> int:
        """How many of the requests out now were sent before `moment`."""
        with self._changed:
            return sum(1 for at in self._out.values() if at < moment)

    def wait_for_sent_before(self, moment: float, timeout: float) -> int:
        """Block until no request sent before `moment` is out, or for `timeout` seconds at most; how many are
        still out (0 when they all came back)."""
        deadline = self.clock() + timeout
        with self._changed:
            while True:
                left = sum(1 for at in self._out.values() if at < moment)
                remaining = deadline - self.clock()
                if left == 0 or remaining <= 0:
                    return left
                self._changed.wait(remaining)
