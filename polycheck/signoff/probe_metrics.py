"""Probe metrics: each run's outcome pushed to a Prometheus Pushgateway, so alerts can watch the CronJob probes.

The conventions of blackbox_exporter (`probe_success`, `probe_duration_seconds`) and Kuberhealthy (a last-success
time, so "no success for N minutes" is one expression). Pushed with prometheus_client's `pushadd_to_gateway`
(POST: only the metric names of this push are replaced inside its group), one group per check and one per run:

| group (grouping key) | metrics |
| --- | --- |
| `job, env, location, check` | `polyshop_check_success{check,service,env,location}` 1/0, `polyshop_check_flaky` 1 when it passed only on a rerun, `polyshop_check_duration_seconds`, and on success only `polyshop_check_last_success_timestamp_seconds` (a failing run keeps the last good time) |
| `job, env, location` | `polyshop_probe_success{env,location}` 1 only for GO, `polyshop_probe_duration_seconds`, `polyshop_probe_quorum` (the env's probe.quorum), `polyshop_probe_checks{env,location,outcome}` (outcome `flaky` too), on GO only `polyshop_probe_last_success_timestamp_seconds` |

`location` (--location, else the env's probe.location, else "default") is where the probe ran from: several CronJobs,
one per cluster or region, push to one Pushgateway without replacing each other's groups, and the alerts count how
many locations agree.

The Pushgateway adds `push_time_seconds` to every group: "the probe has not run for 15 minutes" reads it. No
grouping key carries a pod or run id, so series do not pile up from run to run; no label carries error text.
A check that was skipped or inconclusive pushes nothing for itself: its last success does not move, so a check
that cannot be measured for long enough alerts as "no success", never as "failed".
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.error import URLError

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.exposition import pushadd_to_gateway

JOB = "polycheck"
PASSED, FAILED = "passed", "failed"
OUTCOMES = ("passed", "failed", "blocked", "inconclusive", "skipped")


class PushError(RuntimeError):
    """The Pushgateway could not take the run's metrics; the message says which URL and why."""


@dataclass
class CheckResult:
    """One check's outcome in a run: passed, failed, blocked, inconclusive or skipped, and its time."""

    check: str
    service: str = ""
    outcome: str = PASSED
    seconds: float = 0.0
    flaky: bool = False  # it passed only on a rerun (pytest-rerunfailures)

    @property
    def measured(self) -> bool:
        """Passed, failed or blocked: something was judged (a skip or an inconclusive check judged nothing)."""
        return self.outcome in ("passed", "failed", "blocked")


@dataclass
class ProbeRun:
    """What one run pushes: its environment, its verdict, how long it took, and each check's result."""

    env: str
    verdict: str  # GO | NO-GO | INCONCLUSIVE | anything else (a usage error, an interrupted run)
    seconds: float
    checks: list[CheckResult] = field(default_factory=list)
    finished_at: float = field(default_factory=time.time)
    location: str = "default"  # where the probe ran from: a label of every metric, and of every group
    quorum: int = 2  # the env's probe.quorum, pushed so the alert reads it


def check_registry(run: ProbeRun, result: CheckResult) -> CollectorRegistry:
    """The metrics of one check's group."""
    registry = CollectorRegistry()
    names = ["check", "service", "env", "location"]
    values = [result.check, result.service, run.env, run.location]
    Gauge("polyshop_check_success", "1 when the check passed in the latest run, 0 when it failed or was blocked",
          names, registry=registry).labels(*values).set(1 if result.outcome == PASSED else 0)
    Gauge("polyshop_check_flaky", "1 when the check passed in the latest run only on a rerun, else 0",
          names, registry=registry).labels(*values).set(1 if result.flaky and result.outcome == PASSED else 0)
    Gauge("polyshop_check_duration_seconds", "how long the check took in the latest run (set-up, body, teardown)",
          names, registry=registry).labels(*values).set(result.seconds)
    if result.outcome == PASSED:
        Gauge("polyshop_check_last_success_timestamp_seconds", "when the check last passed (Unix time)",
              names, registry=registry).labels(*values).set(run.finished_at)
    return registry


def run_registry(run: ProbeRun) -> CollectorRegistry:
    """The metrics of the run's group."""
    registry = CollectorRegistry()
    where = ["env", "location"]
    Gauge("polyshop_probe_success", "1 when the latest probe run's verdict was GO, else 0 (NO-GO, INCONCLUSIVE)",
          where, registry=registry).labels(run.env, run.location).set(1 if run.verdict == "GO" else 0)
    Gauge("polyshop_probe_duration_seconds", "how long the latest probe run took",
          where, registry=registry).labels(run.env, run.location).set(run.seconds)
    Gauge("polyshop_probe_quorum", "in how many of the reporting locations a check must fail to alert (probe.quorum)",
          where, registry=registry).labels(run.env, run.location).set(run.quorum)
    counts = Gauge("polyshop_probe_checks", "checks of the latest probe run by outcome",
                   [*where, "outcome"], registry=registry)
    for outcome in OUTCOMES:
        counts.labels(run.env, run.location, outcome).set(sum(1 for c in run.checks if c.outcome == outcome))
    counts.labels(run.env, run.location, "flaky").set(sum(1 for c in run.checks if c.flaky and c.outcome == PASSED))
    if run.verdict == "GO":
        Gauge("polyshop_probe_last_success_timestamp_seconds", "when a probe run last ended GO (Unix time)",
              where, registry=registry).labels(run.env, run.location).set(run.finished_at)
    return registry


def groups(run: ProbeRun, job: str = JOB) -> Iterable[tuple[dict[str, str], CollectorRegistry]]:
    """(grouping key, registry) of every push of the run: the run's group first, then each measured check's."""
    yield {"env": run.env, "location": run.location}, run_registry(run)
    for result in run.checks:
        if result.measured:
            yield {"env": run.env, "location": run.location, "check": result.check}, check_registry(run, result)


def push(url: str, run: ProbeRun, *, job: str = JOB, timeout: float = 5.0) -> int:
    """Push every group of the run; the number of groups pushed. Stops at the first failure with a PushError."""
    if not url:
        raise PushError("no Pushgateway URL (--push-metrics URL or [probe] pushgateway_url)")
    pushed = 0
    for key, registry in groups(run, job):
        try:
            pushadd_to_gateway(url, job=job, registry=registry, grouping_key=key, timeout=timeout)
        except (URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise PushError(
                f"could not push the probe metrics to {url} (group {key}, {pushed} of the run's groups pushed): "
                f"{type(exc).__name__}: {reason}"
            ) from None
        pushed += 1
    return pushed
