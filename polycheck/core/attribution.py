"""Which service answered a request, and which one the evidence blames when the answer breaks the contract.

- A request straight to a service is that service's.
- A request through the gateway belongs to the service its route reaches (`/api/payments*` -> payment);
  the gateway itself owns only the paths it serves (the storefront) and the failures that are its own:
  no connection to the gateway, or an answer that the routed service, sent the same request directly
  (headers included), does not give (a misroute, a dropped header, or a 502/504 for an upstream that
  answers fine and in time); an upstream's slow, 5xx or empty answer through the gateway stays the upstream's.
- A 401 for a token that auth's own /me refuses too is auth's, not the refusing service's.
- A service that did not answer within the read timeout is remembered as hanging for the rest of the
  process: its later requests fail at once with the same evidence instead of waiting again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from polycheck.core.inflight import InFlight

GATEWAY = "gateway"
UPSTREAM_FAILURES = (502, 503, 504)


@dataclass(frozen=True)
class Routes:
    """The gateway's routing table: service -> the path prefixes it answers."""

    prefixes: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def service_for(self, path: str) -> str | None:
        """The service a gateway path reaches (longest matching prefix), None for the gateway's own paths."""
        bare = path.split("?", 1)[0]
        best: tuple[int, str] | None = None
        for service, prefixes in self.prefixes.items():
            for prefix in prefixes:
                if bare.startswith(prefix) and (best is None or len(prefix) > best[0]):
                    best = (len(prefix), service)
        return best[1] if best else None


class ServiceBoard:
    """Services seen hanging in this process, with the evidence of the first timeout; the requests out now."""

    def __init__(self) -> None:
        self._hanging: dict[str, str] = {}
        self.in_flight = InFlight()
        self._lock = threading.Lock()

    def hanging(self, service: str) -> str | None:
        with self._lock:
            return self._hanging.get(service)

    def mark_hanging(self, service: str, evidence: str) -> None:
        with self._lock:
            self._hanging.setdefault(service, evidence)

    def snapshot(self) -> dict[str, str]:
        with self._lock:
            return dict(self._hanging)
