"""Post-deploy validation from Prometheus: each service's data is waited for on its own.

A service Prometheus cannot scrape (`up == 0`) fails its own checks with that evidence at once; every
other service is judged as soon as it has data, so one broken service never blocks the rest.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from collections.abc import Callable

from polycheck.core.failures import check_failed, inconclusive
from polycheck.core.polling import PollTimeout, poll
from polycheck.clients.prometheus import PrometheusClient, PrometheusError
from polycheck.clients.promql import REQUEST_RATE, render

# A service's scrape targets, by job (the Deployment's name or the short one, with or without a namespace).
UP_QUERY = 'min(up{job=~"(.*/)?({service}|{deployment})"})'


@dataclass
class DataReadiness:
    """Which services have data in Prometheus yet; each is waited for once per process."""

    client: PrometheusClient
    window: str
    timeout: float
    up_query: str = UP_QUERY
    _ready: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def require(self, service: str, deployment: str) -> None:
        """Return once the service has a request rate; fail at once when Prometheus cannot scrape it."""
        __tracebackhide__ = True
        with self._lock:
            if service in self._ready:
                return
        rate = render(REQUEST_RATE, service=service, window=self.window)
        up = render(self.up_query, service=service, deployment=deployment)

        def look() -> tuple[bool, float | None]:
            has_rate = bool(self.client.query(rate, allow_empty=True))
            ups = [s.value for s in self.client.query(up, allow_empty=True)]
            return has_rate, (min(ups) if ups else None)

        try:
            has_rate, scraped = poll(look, lambda seen: seen[0] or seen[1] == 0, timeout=self.timeout,
                                     what=f"a request rate of {service} in Prometheus", interval=0.25, max_interval=1.0,
                                     describe=lambda seen: f"rate {'present' if seen[0] else 'absent'}, up {seen[1]}")
        except PollTimeout:
            return  # judged as it is: the check itself says "no data", which is never a pass
        except PrometheusError as exc:
            inconclusive(f"Prometheus cannot be queried: {exc}")
        if scraped == 0:  # down now, whatever rate its earlier samples still give
            check_failed(f"Prometheus cannot scrape {service} (`{up}` is 0): its /metrics does not answer, so the "
                         f"post-deploy checks of {service} have nothing to judge — see its health checks", culprit=service)
        with self._lock:
            self._ready.add(service)


def require_prometheus(client: PrometheusClient, url: str) -> None:
    """Prometheus answers a trivial query, else every post-deploy check is inconclusive (it says nothing of the release)."""
    try:
        client.query("vector(1)")
    except PrometheusError as exc:
        inconclusive(f"Prometheus {url} cannot be queried: {exc}")


class DeployTimes:
    """When each service was deployed: `--since` for all, else its current ReplicaSet's creation read from Kubernetes
    on first use (once per service, in whichever check's thread asks first), else unknown."""

    def __init__(self, since: float | None = None, read: Callable[[str], float | None] | None = None) -> None:
        self.since, self._read = since, read
        self._known: dict[str, float | None] = {}
        self._lock = threading.Lock()

    def get(self, service: str, default: float) -> float:
        if self.since is not None:
            return self.since
        if self._read is None:
            return default
        with self._lock:
            if service not in self._known:
                self._known[service] = self._read(service)
            found = self._known[service]
        return default if found is None else found


def deployed_at(times: DeployTimes | dict[str, float], service: str, window_seconds: float) -> float:
    """When the service was deployed (from `deploy_times`), else the start of the window."""
    return times.get(service, time.time() - window_seconds)
