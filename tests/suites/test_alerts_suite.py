"""Runbook Section 6 "Grafana dashboard OK" against a real Prometheus evaluating an alerting rule over the local
stack: healthy passes; 5xx on order makes the rule fire, and the check fails naming the alert, escalates, and rolls
nothing back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import httpx
import pytest
import yaml

from polycheck.doubles.promserver import LocalPrometheus
from tests.support.prometheus_wait import until_query
from tests.support.stack_control import StackControl
from tests.support.suite_runner import run_suites
from tests.support.selftest_env import local_env_text

SUITE = "suites/test_alerts.py"
CHECK = "test_no_polyshop_alert_is_firing"
RULES = {"groups": [{"name": "polyshop", "rules": [{
    "alert": "PolyshopHighErrorRate",
    "expr": 'sum by (service) (rate(http_requests_total{status=~"5.."}[15s])) / sum by (service) (rate(http_requests_total[15s])) > 0.05',
    "labels": {"severity": "page"},
}]}]}


@pytest.fixture(scope="module")
def alerting_prometheus(local_stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrometheus]:
    reason = LocalPrometheus.available()
    if reason:
        pytest.skip(reason)
    rules = tmp_path_factory.mktemp("alert-rules") / "polyshop.rules.yml"
    rules.write_text(yaml.safe_dump(RULES))
    server = LocalPrometheus.start(local_stack.info.services, scrape_interval="1s", rule_files=[rules])
    yield server
    server.stop()


@pytest.fixture
def alert_env(tmp_path: Path, alerting_prometheus: LocalPrometheus) -> Path:
    text = local_env_text().replace(
        "[prometheus]\n", f'[prometheus]\nurl = "{alerting_prometheus.url}"\ngrafana_url = "http://grafana.local.test/d/polyshop"\n')
    (tmp_path / "local.toml").write_text(text)
    return tmp_path


def test_no_alert_firing_passes(stack: StackControl, alert_env: Path, tmp_path: Path) -> None:
    run = run_suites(SUITE, f"--env-dir={alert_env}", f"--rollback-log={tmp_path / 'log.jsonl'}", stack_file=stack.stack_file)
    assert run.returncode == 0 and run.ids("passed") == {CHECK}, run.describe()


def test_a_firing_alert_fails_escalates_and_rolls_nothing_back(
    stack: StackControl, alert_env: Path, alerting_prometheus: LocalPrometheus, tmp_path: Path
) -> None:
    stack.set_fault("order", "errors", ratio=0.5, paths=["/api/"])
    gateway = stack.stack.info.gateway

    def drive() -> None:
        for _ in range(10):
            httpx.get(f"{gateway}/api/orders/polycheck-probe", timeout=2)

    # The gateway forwards order's 5xx, so its alert can fire first (its 5xx series may already exist from an
    # earlier test, while order's is born now and needs two scrapes to show a rate): wait for order's own alert.
    until_query(alerting_prometheus,
                'ALERTS{alertstate="firing", alertname="PolyshopHighErrorRate", service="order"}', lambda v: v >= 1,
                timeout=40, drive=drive)
    log = tmp_path / "log.jsonl"
    run = run_suites(SUITE, f"--env-dir={alert_env}", f"--rollback-log={log}", stack_file=stack.stack_file)
    assert run.returncode == 1 and run.failed == {CHECK}, run.describe()
    message = run.cases[CHECK].message
    assert 'PolyshopHighErrorRate{service="order", severity="page"}' in message, message
    assert "http://grafana.local.test/d/polyshop" in message
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert any(r["step"] == "escalation" and "Grafana dashboard not OK" in r["detail"] for r in records), [(r["step"], r["detail"]) for r in records]
    assert not any(r["step"] == "decision" for r in records), "an alert names no release: nothing is rolled back"


def test_alertmanager_api_active_alerts_only() -> None:
    """From Alertmanager's API v2: active alerts, silenced and inhibited ones asked away, the filter passed on."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlsplit

    from polycheck.checks.alerts import firing
    from polycheck.core.config import PrometheusConfig

    asked: list[dict[str, list[str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            asked.append(parse_qs(urlsplit(self.path).query))
            body = json.dumps([
                {"labels": {"alertname": "KafkaLagHigh", "service": "inventory", "severity": "page"}, "status": {"state": "active"}},
                {"labels": {"alertname": "Watchdog"}, "status": {"state": "active"}},
                {"labels": {"alertname": "Old"}, "status": {"state": "suppressed"}},
            ]).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings = PrometheusConfig(alertmanager_url=f"http://127.0.0.1:{server.server_port}",
                                    alertmanager_filter=['namespace="polyshop"'])
        alerts, source = firing(settings, None)
    finally:
        server.shutdown()
        server.server_close()
    assert [str(a) for a in alerts] == ['KafkaLagHigh{service="inventory", severity="page"}']
    assert source.startswith("Alertmanager http://127.0.0.1:")
    assert asked[0]["silenced"] == ["false"] and asked[0]["inhibited"] == ["false"]
    assert asked[0]["filter"] == ['namespace="polyshop"']
