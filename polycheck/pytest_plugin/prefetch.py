"""Which reads the selected checks will make (`@pytest.mark.requests("GET /health")`), so the run can send them
all at once. Only the selected checks are planned: a check run alone (-k) makes only its own requests."""

from __future__ import annotations

import pytest

from polycheck.core.config import EnvConfig
from polycheck.clients.fanout import GATEWAY_PROBE, PlannedRequest


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
            method, _, path = str(spec).partition(" ")
            if method == "GET" and "service" in params:
                plan.append(PlannedRequest(item.nodeid, str(params["service"]), path))
    return plan
