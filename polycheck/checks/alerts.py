"""Runbook Section 6 "Grafana dashboard OK": which PolyShop alerts are firing, from Prometheus or Alertmanager.

A dashboard is OK when nothing on it is red, and what turns it red are the alerts. Prometheus exposes the alerts it
evaluates as the `ALERTS{alertstate="firing"}` series (`prometheus.alerts_query` narrows them to PolyShop's, e.g.
`ALERTS{alertstate="firing", namespace="polyshop"}`); Alertmanager's API v2 (`prometheus.alertmanager_url`) also
knows the alerts of every Prometheus and which are silenced or inhibited (those are left out: someone owns them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import httpx

from polycheck.core.config import PrometheusConfig
from polycheck.clients.prometheus import PrometheusClient, PrometheusError, PrometheusUnavailable

NAME_LABELS = ("alertname", "alertstate", "__name__")
SHOWN_LABELS = ("service", "severity", "namespace", "deployment", "job", "check", "env")


@dataclass(frozen=True)
class Alert:
    name: str
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def service(self) -> str | None:
        return self.labels.get("service")

    def __str__(self) -> str:
        shown = {k: v for k, v in sorted(self.labels.items()) if k in SHOWN_LABELS}
        inner = ", ".join(f'{k}="{v}"' for k, v in shown.items())
        return f"{self.name}{{{inner}}}" if inner else self.name


def from_prometheus(client: PrometheusClient, query: str) -> list[Alert]:
    """The alerts `query` returns (an ALERTS selector): one per series."""
    samples = client.query(query, allow_empty=True)
    return _unique(_alert(s.labels) for s in samples)


def from_alertmanager(url: str, matchers: list[str], timeout: float) -> list[Alert]:
    """Active alerts from Alertmanager's API v2, neither silenced nor inhibited."""
    flags: list[tuple[str, str | int | float | bool | None]] = [("active", "true"), ("silenced", "false"),
                                                                ("inhibited", "false"), ("unprocessed", "false")]
    params = flags + [("filter", m) for m in matchers]
    endpoint = f"{url.rstrip('/')}/api/v2/alerts"
    try:
        response = httpx.get(endpoint, params=params, timeout=timeout)
    except httpx.HTTPError as exc:
        raise PrometheusUnavailable(f"Alertmanager {endpoint}: {type(exc).__name__}: {exc}", url=url) from None
    if response.status_code != 200:
        raise PrometheusUnavailable(f"Alertmanager {endpoint}: HTTP {response.status_code}: {response.text[:200]}", url=url)
    try:
        items = response.json()
    except ValueError:
        raise PrometheusError(f"Alertmanager {endpoint} did not answer JSON: {response.text[:200]}") from None
    return _unique(_alert(dict(item.get("labels") or {})) for item in items
                   if (item.get("status") or {}).get("state", "active") == "active")


def _unique(alerts: Iterable[Alert]) -> list[Alert]:
    return sorted({str(a): a for a in alerts}.values(), key=str)


def _alert(labels: Mapping[str, str]) -> Alert:
    name = labels.get("alertname", "?")
    return Alert(name, {k: v for k, v in labels.items() if k not in NAME_LABELS})


def firing(settings: PrometheusConfig, client: PrometheusClient | None) -> tuple[list[Alert], str]:
    """(the firing alerts that count, where they were read), ignoring `settings.ignore_alerts`."""
    if settings.alertmanager_url:
        alerts = from_alertmanager(settings.alertmanager_url, settings.alertmanager_filter, settings.query_timeout_seconds)
        source = f"Alertmanager {settings.alertmanager_url}"
    else:
        if client is None:
            raise PrometheusUnavailable("no Prometheus to read ALERTS from and no prometheus.alertmanager_url")
        alerts = from_prometheus(client, settings.alerts_query)
        source = f"Prometheus {settings.url}: {settings.alerts_query}"
    return [a for a in alerts if a.name not in settings.ignore_alerts], source
