"""Clients lent to one request at a time: keep-alive without sharing a connection pool between threads.

httpcore's connection pool (1.0.9, and its master as of encode/httpcore#1110) can close a connection it has just
assigned to another thread's request: the connection stays idle until that thread starts on it, and a second
thread's pass in between takes it for a surplus idle connection (more than max_keepalive_connections in the pool)
or an expired one, and closes it. Closed before the request starts, the request is queued again; closed after,
the request's read fails with "[Errno 9] Bad file descriptor", or waits out its whole read timeout. Either is the
checker's own fault, and a check would report it as the service's (seen: `ReadError: [Errno 9] Bad file descriptor`
blamed on the gateway, under load).

So no pool is shared. A lender keeps the clients of one base URL, each with a single keep-alive connection, and
lends each to one request at a time: every pass of a client's pool runs in the thread that holds it, and nothing
else touches its connection. A client given back is lent again (most recently used first, its connection the most
likely still open); there are as many as requests were ever in flight at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx

# The limits of a lent client: one connection, kept alive between the requests it is lent to.
ONE_CONNECTION = dict(max_connections=1, max_keepalive_connections=1)


class ClientLender:
    """The clients of one base URL and timeout, each lent to one request at a time."""

    def __init__(self, make: Callable[[], httpx.Client]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._free: list[httpx.Client] = []
        self._made = 0
        self._closed = False
        self.template = make()  # builds requests (no I/O): base URL, headers and timeout as every lent client has them

    def build_request(self, method: str, url: str, **kwargs: object) -> httpx.Request:
        return self.template.build_request(method, url, **kwargs)  # type: ignore[arg-type]

    @contextmanager
    def lease(self) -> Iterator[httpx.Client]:
        """A client no other request holds until this one gives it back."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the run's HTTP clients are closed")
            client = self._free.pop() if self._free else None
        if client is None:
            client = self._make()
            with self._lock:
                self._made += 1
        try:
            yield client
        finally:
            with self._lock:
                if not self._closed:
                    self._free.append(client)
                    client = None
            if client is not None:
                client.close()  # closed while it was lent: its connection is closed by the thread that used it

    @property
    def size(self) -> int:
        """How many clients were made to lend (the most requests in flight at once)."""
        with self._lock:
            return self._made

    def close(self) -> None:
        """Close the clients not lent now; one lent now is closed when it is given back."""
        with self._lock:
            self._closed = True
            free, self._free = self._free, []
        self.template.close()
        for client in free:
            client.close()
