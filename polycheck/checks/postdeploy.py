"""Post-deploy validation from Prometheus: each service's data is waited for on its own.

A service known to hang, one Prometheus cannot scrape (`up` 0 throughout `prometheus.down_for`, so a single failed
scrape is not taken for a service down), and one scraped (`up == 1`) that exports no series under its name (a wrong
`service` label) fail their own checks with that evidence, with no data wait; every other service is judged as soon
as it has data, so one broken service never blocks the rest.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from collections.abc import Callable

from polycheck.core.attribution import ServiceBoard
from polycheck.core.config import PrometheusConfig
from polycheck.core.durations import parse_duration
from polycheck.core.failures import check_failed, inconclusive
from polycheck.core.polling import PollTimeout, poll
from polycheck.clients.prometheus import PrometheusClient, PrometheusError, format_duration
from polycheck.clients.promql import REQUEST_RATE, Check, render

# A service's scrape targets, by job (the Deployment's name or the short one, with or without a namespace).
UP_QUERY = 'min(up{job=~"(.*/)?({service}|{deployment})"})'
# Down throughout the last `down_for`: the largest `up` of every moment in it (a subquery of the up query, one point
# per `step`), so a scrape that failed once between good ones is not a service down.
DOWN_QUERY = "max_over_time(({up})[{down_for}:{step}])"
# When the run makes the traffic itself (the local stack's customers), it waits for this many times the evidence
# minimum: the count is read through increase(), which extrapolates a series that began near the range's start (a
# fresh stack, a fresh Prometheus) and can overstate it; a check a moment later then counted fewer than the minimum
# (seen in make smoke: the wait saw 100 over 14s, product's p99 check then 87 observations over 15s: INCONCLUSIVE).
OWN_TRAFFIC_MARGIN = 1.5
# Every series carrying the service's name (the contract's `service` label), whatever the family.
SERIES_QUERY = 'count({service="{service}"})'
# The service's API requests over the window (scrapes and probes left out): what the minimums count.
API_REQUESTS_QUERY = 'sum(increase(http_requests_total{service="{service}",{api_routes}}[{window}]))'


@dataclass(frozen=True)
class Seen:
    """One look at a service in Prometheus: a request rate yet, its targets' `up`, how many series carry its name."""

    has_rate: bool
    up: float | None
    series: int
    requests: float | None = None  # API requests in the window, when the run waits for its own traffic's evidence
    enough: float = 0.0
    down: bool = False  # `up` 0 throughout `down_for` (asked only when `up` is 0 now)

    @property
    def settled(self) -> bool:
        """Nothing more to wait for: a target down throughout `down_for`, else (no target failing its scrape now)
        data (and, when the run makes the traffic, enough of it) or a target up whose series do not carry the name.
        A target 0 now but not throughout is waited for: one failed scrape ends with the next good one."""
        if self.down:
            return True
        if self.up == 0:
            return False
        has_data = self.has_rate and (self.requests is None or self.requests >= self.enough)
        return has_data or (self.up == 1 and self.series == 0)

    def describe(self) -> str:
        counted = f", {self.requests:g} of {self.enough:g} API requests" if self.requests is not None else ""
        failing = (" (not throughout down_for)" if not self.down else " throughout down_for") if self.up == 0 else ""
        return (f"rate {'present' if self.has_rate else 'absent'}, up {self.up}{failing}, {self.series} series under "
                f"its name{counted}")


@dataclass
class DataReadiness:
    """Which services have data in Prometheus yet; each is waited for once per process."""

    client: PrometheusClient
    window: str
    timeout: float
    up_query: str = UP_QUERY
    down_for: str = "30s"  # how long `up` must stay 0 for the service to count as down (more than a scrape interval)
    board: ServiceBoard | None = None  # services known to hang in this run (the preflight, a confirmed timeout)
    # > 0 when the run makes the traffic itself (the local stack's customers): wait, within `timeout`, for this many
    # API requests in the window (the largest evidence minimum), routes left out by `excluded`
    enough_requests: float = 0.0
    excluded: Callable[[str], tuple[str, ...]] = lambda service: ()
    # a service deployed more recently than the window: wait, within `timeout`, for this many API requests since
    # the deploy, whoever makes the traffic (the largest evidence minimum)
    recent_requests: float = 0.0
    _ready: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def require(self, service: str, deployment: str, deployed_at: float | None = None) -> None:
        """Return once the service has a request rate; fail at once when it is known to hang, when Prometheus cannot
        scrape it, or when it is scraped but no series carries its name. Deployed more recently than the window,
        it also waits (within `timeout`) for `recent_requests` API requests since the deploy: the traffic checks
        judge only that span (`judged_window`), and too few there would make them inconclusive."""
        __tracebackhide__ = True
        hanging = self.board.hanging(service) if self.board is not None else None
        if hanging is not None:
            check_failed(f"{service} is hanging ({hanging}): its metrics are not waited for, the checks of {service} "
                         f"have nothing to judge — see its health checks", culprit=service)
        with self._lock:
            if service in self._ready:
                return
        rate = render(REQUEST_RATE, service=service, window=self.window)
        up = render(self.up_query, service=service, deployment=deployment)
        down = down_query(up, self.down_for)
        series = render(SERIES_QUERY, service=service)
        recent = judged_window(self.window, deployed_at) != self.window
        enough = max(self.enough_requests, self.recent_requests if recent else 0.0)

        def look() -> Seen:
            has_rate = bool(self.client.query(rate, allow_empty=True))
            ups = [s.value for s in self.client.query(up, allow_empty=True)]
            counted = self.client.query(series, allow_empty=True)
            made = None
            if enough > 0:  # counted over what the traffic checks will judge: since the deploy, when recent
                requests = render(API_REQUESTS_QUERY, service=service, window=judged_window(self.window, deployed_at),
                                  exclude_routes=self.excluded(service))
                answer = self.client.query(requests, allow_empty=True)
                made = answer[0].value if answer else 0.0
            lowest = min(ups) if ups else None
            failing = lowest == 0 and any(s.value == 0 for s in self.client.query(down, allow_empty=True))
            return Seen(has_rate, lowest, int(counted[0].value) if counted else 0, made, enough, failing)

        try:
            seen = poll(look, lambda seen: seen.settled, timeout=self.timeout, what=f"a request rate of {service} in "
                        "Prometheus", interval=0.25, max_interval=1.0, describe=lambda seen: seen.describe())
        except PollTimeout as exc:
            last = exc.last
            if isinstance(last, Seen) and last.up == 0:  # a scrape failing now, not yet throughout down_for
                inconclusive(f"Prometheus failed its last scrape of {service} (`{up}` is 0 at the end of the "
                             f"{self.timeout:g}s data wait) but not every scrape of the last {self.down_for} (`{down}` is "
                             f"not 0): whether {service} is down cannot be told yet — see its health checks and the "
                             f"target's last error in Prometheus")
            return  # judged as it is: the check itself says "no data", which is never a pass
        except PrometheusError as exc:
            inconclusive(f"Prometheus cannot be queried: {exc}")
        if seen.down:  # down throughout down_for, whatever rate its earlier samples still give
            check_failed(f"Prometheus cannot scrape {service} (`{up}` is 0 throughout the last {self.down_for}: "
                         f"`{down}` is 0): its /metrics does not answer, so the post-deploy checks of {service} have "
                         f"nothing to judge — see its health checks", culprit=service)
        if seen.series == 0:
            check_failed(f"Prometheus scrapes {service} (`{up}` is 1) but no series carries service=\"{service}\" "
                         f"(`{series}` is empty): its /metrics does not label its samples with its own name (the contract's "
                         f"`service` label is the short name), so nothing of {service} can be judged", culprit=service)
        with self._lock:
            self._ready.add(service)


def down_query(up: str, down_for: str) -> str:
    """The rendered up query's largest value at every moment of the last `down_for` (one point per second for up to
    30 s, then 30 points in all): 0 only when every scrape in that time failed."""
    seconds = parse_duration(down_for)
    return DOWN_QUERY.format(up=up, down_for=format_duration(seconds), step=format_duration(max(1.0, seconds / 30)))


def judged_window(window: str, deployed_at: float | None, now: float | None = None) -> str:
    """The range a traffic check (5xx ratio, p99: those with an evidence minimum) judges: the window, or, when the
    service was deployed more recently than that, only the time since the deploy (whole seconds, at least 1 s):
    the window's older part is the previous release's traffic, which would dilute a broken release into a GO."""
    if deployed_at is None:
        return window
    elapsed = (time.time() if now is None else now) - deployed_at
    if elapsed >= parse_duration(window):
        return window
    return format_duration(max(1, math.ceil(elapsed)))


def evidence_minimum(check: Check, settings: PrometheusConfig) -> float | None:
    """The env's minimum for the check's evidence (`prometheus.min_requests`, `prometheus.min_observations`)."""
    if check.evidence is None:
        return None
    return float(getattr(settings, check.evidence.setting.rsplit(".", 1)[-1]))


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
