"""Runbook Section 6 "Grafana dashboard OK": no PolyShop alert is firing after the deploy."""

from __future__ import annotations

import pytest

from polycheck.checks.alerts import firing
from polycheck.core.config import EnvConfig
from polycheck.core.failures import check_failed, inconclusive
from polycheck.clients.prometheus import PrometheusClient, PrometheusError

pytestmark = [pytest.mark.postdeploy, pytest.mark.smoke, pytest.mark.concurrent]

DASHBOARD = "runbook Section 6: Grafana dashboard not OK — PolyShop alerts firing after the deploy"


@pytest.mark.escalate(DASHBOARD)
def test_no_polyshop_alert_is_firing(prometheus: PrometheusClient, env_config: EnvConfig) -> None:
    """Section 6: Grafana dashboard OK — no PolyShop alert firing (escalates; never rolls back: an alert names no release)."""
    try:
        alerts, source = firing(env_config.prometheus, prometheus)
    except PrometheusError as exc:
        inconclusive(f"cannot read the firing alerts: {exc}")
    if alerts:
        services = {a.service for a in alerts}
        culprit = next(iter(services)) if len(services) == 1 and None not in services else None
        check_failed(f"{len(alerts)} PolyShop alert(s) firing ({source}): " + "; ".join(map(str, alerts))
                     + (f" — see {env_config.prometheus.grafana_url}" if env_config.prometheus.grafana_url else ""),
                     culprit=culprit, escalation=DASHBOARD)
