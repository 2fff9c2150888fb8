"""polyshop-api.md "Every service": X-Request-ID is echoed and the W3C trace continued, so Loki and Jaeger find a request."""

from __future__ import annotations

import pytest

from polycheck.checks.contract_checks import expect_propagation
from polycheck.checks.health import LIVE
from polycheck.clients.http import ServiceClient

pytestmark = [pytest.mark.smoke, pytest.mark.synthetic, pytest.mark.concurrent]


@pytest.mark.requests(LIVE)
def test_request_id_and_trace_are_propagated(service: str, service_client: ServiceClient) -> None:
    """Runbook Section 1 (Loki, Jaeger): the service echoes X-Request-ID and continues the caller's traceparent."""
    expect_propagation(service_client, service)
