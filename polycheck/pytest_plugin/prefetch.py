"""Which reads the selected checks will make (`@pytest.mark.requests(HEALTH)`), so the run can send them all at
once; and, at the end, the declared reads a check never made (its marker and its helper disagree: the early
request was wasted and the check sent its own). Only the selected checks are planned: a check run alone (-k)
makes only its own requests."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from polycheck.core.config import EnvConfig
from polycheck.clients.fanout import GATEWAY_PROBE, PlannedRequest, Read
from polycheck.clients.http import Exchange
from polycheck.clients.tracing import CheckTrace
from polycheck.pytest_plugin.reporting import REPORTS

UNMADE = pytest.StashKey[list[str]]()


def plan_requests(items: list[pytest.Item], config: EnvConfig) -> list[PlannedRequest]:
    plan: list[PlannedRequest] = []
    for item in items:
        marker = item.get_closest_marker("requests")
        params = getattr(getattr(item, "callspec", None), "params", {})
        if marker is None:
            continue
        for spec in marker.args:
            if spec == GATEWAY_PROBE and "routed_service" in params:
                probe = config.service(params["routed_service"]).gateway_probe
                if probe is not None and probe.method == "GET":
                    plan.append(PlannedRequest(item.nodeid, "gateway", probe.path))
                continue
            read = spec if isinstance(spec, Read) else _read_of(str(spec))
            if read.method == "GET" and "service" in params:
                plan.append(PlannedRequest(item.nodeid, str(params["service"]), read.path))
    return plan


def _read_of(spec: str) -> Read:
    method, _, path = spec.partition(" ")
    return Read(path, method)


def note_unmade_reads(config: pytest.Config, untaken: list[Exchange], traces: dict[str, CheckTrace],
                      items: list[pytest.Item]) -> None:
    """Keep, for the summary, each fanned-out answer a check that ran never asked for (a check not run, or
    skipped, is excused: it may stop before its read)."""
    check_of = {trace.trace_id: check for check, trace in traces.items()}
    by_id = {item.nodeid: item for item in items}
    unmade = config.stash.setdefault(UNMADE, [])
    for exchange in untaken:
        item = by_id.get(check_of.get(exchange.trace_id, ""))
        report = item.stash.get(REPORTS, {}).get("call") if item is not None else None
        if item is None or report is None or report.skipped:
            continue
        unmade.append(f"{item.nodeid} declares {exchange.method} {urlsplit(exchange.url).path} "
                      "(@pytest.mark.requests) but never sent it")


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    unmade: list[str] = config.stash.get(UNMADE, [])
    for line in sorted(unmade):
        terminalreporter.write_line(f"polycheck: {line}; the early request was wasted", red=True)
