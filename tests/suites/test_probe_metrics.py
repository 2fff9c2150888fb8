"""Probe metrics through a real Pushgateway and a real Prometheus scraping it (honor_labels: true), and the alerts of
deploy/base/prometheus-rule.yaml evaluated on what a failing and a passing probe run pushed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from polycheck.core.polling import poll
from polycheck.signoff.probe_metrics import CheckResult, ProbeRun, PushError, push
from polycheck.clients.prometheus import PrometheusClient
from polycheck.doubles.promserver import LocalPrometheus
from polycheck.doubles.pushserver import LocalPushgateway
from tests.support.stack_control import StackControl
from tests.support.suite_runner import REPO, SuiteRun, run_suites

RULE = REPO / "deploy" / "base" / "prometheus-rule.yaml"
LATER = 16 * 60  # seconds: past every 15-minute threshold of the rules
HEALTH = ("suites/test_health.py", "-m", "smoke", "-k", "order or auth", "--env", "local")


def rule_groups(env: str = "prod") -> list[dict[str, Any]]:
    """The PrometheusRule's groups as an overlay for `env` renders them: the base names env="prod" in absent()'s
    selector (so the alert keeps its env), the staging overlay env="staging"; these tests push env="local"."""
    groups = yaml.safe_load(RULE.read_text())["spec"]["groups"]
    for rule in (r for group in groups for r in group["rules"]):
        rule["expr"] = rule["expr"].replace('env="prod"', f'env="{env}"')
    return groups


def rules(env: str = "local") -> dict[str, dict[str, Any]]:
    (group,) = rule_groups(env)
    return {rule["alert"]: rule for rule in group["rules"]}


@pytest.fixture(scope="module")
def monitoring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalPushgateway, LocalPrometheus]]:
    """A Pushgateway and a Prometheus scraping it every second, loading the PrometheusRule's groups as a rule file
    (Prometheus refuses to start on a rule it cannot parse). The lookback of 1 h lets an instant query 16 minutes
    ahead still see the last push: 'the probe pushed nothing since'."""
    for reason in (LocalPushgateway.available(), LocalPrometheus.available()):
        if reason:
            pytest.skip(reason)
    rule_file = tmp_path_factory.mktemp("rules") / "polycheck.rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": rule_groups("local")}))
    with LocalPushgateway.start() as gateway:
        prometheus = LocalPrometheus.start({"pushgateway": gateway.url}, scrape_interval="1s", rule_files=[rule_file],
                                           flags=["--query.lookback-delta=1h"])
        try:
            yield gateway, prometheus
        finally:
            prometheus.stop()


def values(prometheus: LocalPrometheus, promql: str, at: float | None = None) -> dict[str, float]:
    """check (or env) label -> value of an instant query."""
    with PrometheusClient(prometheus.url, 5) as client:
        return {s.labels.get("check") or s.labels.get("env", ""): s.value for s in client.query(promql, at, allow_empty=True)}


def until(prometheus: LocalPrometheus, promql: str, holds: Any, what: str) -> dict[str, float]:
    return poll(lambda: values(prometheus, promql), holds, timeout=20, what=what)


def pushed(gateway: LocalPushgateway) -> list[Any]:
    return list(text_string_to_metric_families(httpx.get(f"{gateway.url}/metrics", timeout=5).text))


def test_alerts_fire_on_a_failing_probe_and_not_on_a_passing_one(
    monitoring: tuple[LocalPushgateway, LocalPrometheus], stack: StackControl
) -> None:
    gateway, prometheus = monitoring
    alerts = rules()
    assert set(alerts) == {"PolyshopCheckFailing", "PolyshopCheckNoSuccess", "PolyshopProbeNotRun",
                           "PolyshopProbeLocationFailingEverything", "PolyshopCheckFlapping"}
    assert alerts["PolyshopCheckFailing"]["for"] == "10m"

    passing = run_suites(*HEALTH, "--push-metrics", gateway.url, stack_file=stack.stack_file)
    assert passing.returncode == 0, passing.describe()
    assert f"pushed the probe metrics to {gateway.url}" in passing.output
    success = until(prometheus, 'polyshop_check_success{job="polycheck",env="local"}',
                    lambda v: len(v) >= 10 and set(v.values()) == {1.0}, "every check's success = 1 in Prometheus")
    assert "test_health::test_health_reports_ok[order]" in success
    assert until(prometheus, 'polyshop_probe_success{job="polycheck"}', lambda v: v == {"local": 1.0}, "probe success")
    good = values(prometheus, "polyshop_check_last_success_timestamp_seconds")
    assert all(abs(t - time.time()) < 120 for t in good.values()) and set(good) == set(success)
    series = values(prometheus, 'polyshop_check_duration_seconds{job="polycheck"}')
    assert set(series) == set(success) and all(v >= 0 for v in series.values())
    for name, rule in alerts.items():
        assert values(prometheus, rule["expr"]) == {}, f"{name} fires on a passing probe run"

    stack.set_fault("order", "down")
    failing = run_suites(*HEALTH, "--push-metrics", gateway.url, stack_file=stack.stack_file)
    assert failing.returncode == 1, failing.describe()
    failed = until(prometheus, 'polyshop_check_success{job="polycheck"} == 0', lambda v: len(v) >= 4,
                   "the order checks' success = 0 in Prometheus")
    assert all("[order]" in check for check in failed), failed
    assert until(prometheus, 'polyshop_probe_success{job="polycheck"}', lambda v: v == {"local": 0.0}, "probe failure")
    # each check's series is its own push: wait until Prometheus has scraped them all after the second run
    passed_again = set(good) - set(failed)
    last = until(prometheus, "polyshop_check_last_success_timestamp_seconds",
                 lambda v: all(v.get(c, 0.0) > good[c] for c in passed_again), "a passing check's last success moves on")
    assert {c: last[c] for c in failed} == {c: good[c] for c in failed}, "a failing run keeps the last good time"
    assert set(values(prometheus, alerts["PolyshopCheckFailing"]["expr"])) == set(failed)

    later = time.time() + LATER  # no run since the failing one: 16 minutes on, every rule fires
    assert set(values(prometheus, alerts["PolyshopCheckFailing"]["expr"], later)) == set(failed)
    assert set(failed) <= set(values(prometheus, alerts["PolyshopCheckNoSuccess"]["expr"], later))
    assert values(prometheus, alerts["PolyshopProbeNotRun"]["expr"], later) == {"local": pytest.approx(LATER, abs=120)}
    labels = {k for family in pushed(gateway) for s in family.samples for k in s.labels
              if s.name.startswith("polyshop_") or s.name in ("push_time_seconds", "push_failure_time_seconds")}
    assert labels <= {"job", "env", "location", "check", "service", "outcome", "instance"}, "no pod, run id or error text in labels"


def test_a_probe_that_cannot_push_keeps_its_verdict_and_says_why(stack: StackControl) -> None:
    dead = "http://127.0.0.1:9"  # the discard port: connection refused
    run: SuiteRun = run_suites("suites/test_health.py", "-m", "smoke", "-k", "test_health_reports_ok and order",
                               "--env", "local", "--push-metrics", dead, stack_file=stack.stack_file)
    assert run.returncode == 0, run.describe()
    assert f"PUSH FAILED: could not push the probe metrics to {dead}" in run.output
    assert "the run's verdict (GO) and exit code stand" in run.output


def test_grouping_keys_and_the_last_success_only_moves_on_success() -> None:
    reason = LocalPushgateway.available()
    if reason:
        pytest.skip(reason)
    with LocalPushgateway.start() as gateway:  # its own: the alert test evaluates every series of its gateway
        grouping_keys_and_last_success(gateway)


def grouping_keys_and_last_success(gateway: LocalPushgateway) -> None:
    ok = ProbeRun("unit", "GO", 1.5, [CheckResult("test_x::test_a[order]", "order", "passed", 0.25),
                                       CheckResult("test_x::test_b", "", "skipped", 0.0)], finished_at=1000.0)
    assert push(gateway.url, ok) == 2, "the run's group and the one measured check (a skip pushes nothing)"
    bad = ProbeRun("unit", "NO-GO", 2.0, [CheckResult("test_x::test_a[order]", "order", "failed", 0.5)], finished_at=2000.0)
    push(gateway.url, bad)
    samples = {(s.name, s.labels.get("check", "")): s for family in pushed(gateway) for s in family.samples
               if s.labels.get("env") == "unit"}
    assert samples[("polyshop_check_success", "test_x::test_a[order]")].value == 0
    assert samples[("polyshop_check_last_success_timestamp_seconds", "test_x::test_a[order]")].value == 1000.0
    assert samples[("polyshop_probe_last_success_timestamp_seconds", "")].value == 1000.0
    assert samples[("polyshop_probe_success", "")].value == 0
    assert ("polyshop_check_success", "test_x::test_b") not in samples
    assert samples[("polyshop_check_success", "test_x::test_a[order]")].labels["service"] == "order"
    assert {s.labels.get("location") for s in samples.values()} == {"default"}, "every series names its location"
    assert samples[("polyshop_probe_quorum", "")].value == 2
    with pytest.raises(PushError, match="could not push the probe metrics to http://127.0.0.1:9"):
        push("http://127.0.0.1:9", ok, timeout=2)


def test_the_rules_are_valid_for_promtool(tmp_path: Path) -> None:
    import shutil
    import subprocess

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("no promtool on PATH (Debian's prometheus package ships it)")
    rule_file = tmp_path / "rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": rule_groups()}))
    checked = subprocess.run([promtool, "check", "rules", str(rule_file)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_rules_fire_after_their_durations_in_promtool(tmp_path: Path) -> None:
    """promtool's rule unit tests, for what an instant query cannot show: `for: 10m`, and the 15-minute thresholds."""
    import shutil
    import subprocess

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("no promtool on PATH (Debian's prometheus package ships it)")
    groups = rule_groups()  # the base: env="prod"
    for rule in (r for group in groups for r in group["rules"]):
        rule.pop("annotations", None)  # promtool compares annotations too: the test is about expressions and `for`
    rule_file = tmp_path / "rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": groups}))
    labels = 'job="polycheck", env="prod", check="test_auth::test_login", service="auth", instance=""'
    run_labels = 'job="polycheck", env="prod", instance=""'
    failing = {"interval": "1m", "input_series": [
        {"series": f"polyshop_check_success{{{labels}}}", "values": "0x20"},
        {"series": f"polyshop_check_last_success_timestamp_seconds{{{labels}}}", "values": "0x20"},
        {"series": f"push_time_seconds{{{run_labels}}}", "values": "0x20"},
    ], "alert_rule_test": [
        {"eval_time": "9m", "alertname": "PolyshopCheckFailing", "exp_alerts": []},
        {"eval_time": "11m", "alertname": "PolyshopCheckFailing", "exp_alerts": [{"exp_labels": {
            "severity": "page", "job": "polycheck", "env": "prod", "check": "test_auth::test_login", "service": "auth",
}}]},
        {"eval_time": "14m", "alertname": "PolyshopCheckNoSuccess", "exp_alerts": []},
        {"eval_time": "16m", "alertname": "PolyshopCheckNoSuccess", "exp_alerts": [{"exp_labels": {
            "severity": "page", "job": "polycheck", "env": "prod", "check": "test_auth::test_login", "service": "auth",
}}]},
        {"eval_time": "14m", "alertname": "PolyshopProbeNotRun", "exp_alerts": []},
        {"eval_time": "16m", "alertname": "PolyshopProbeNotRun", "exp_alerts": [{"exp_labels": {
            "severity": "page", "job": "polycheck", "env": "prod"}}]},
    ]}
    # passing: a run every 5 minutes, each pushing a fresh success and push time
    passing = {"interval": "1m", "input_series": [
        {"series": f"polyshop_check_success{{{labels}}}", "values": "1x30"},
        {"series": f"polyshop_check_last_success_timestamp_seconds{{{labels}}}",
         "values": " ".join(str(60 * (m - m % 5)) for m in range(31))},
        {"series": f"push_time_seconds{{{run_labels}}}", "values": " ".join(str(60 * (m - m % 5)) for m in range(31))},
    ], "alert_rule_test": [{"eval_time": f"{m}m", "alertname": name, "exp_alerts": []}
                           for m in (11, 16, 30) for name in ("PolyshopCheckFailing", "PolyshopCheckNoSuccess", "PolyshopProbeNotRun")]}
    # never run: the absent() branch still names the env ("has not run in prod", not "in  for 15 minutes")
    never = {"interval": "1m", "input_series": [], "alert_rule_test": [
        {"eval_time": "1m", "alertname": "PolyshopProbeNotRun", "exp_alerts": [{"exp_labels": {"severity": "page", "job": "polycheck", "env": "prod"}}]},
    ]}
    tests = tmp_path / "rules_test.yml"
    tests.write_text(yaml.safe_dump({"rule_files": [str(rule_file)], "evaluation_interval": "1m",
                                     "tests": [failing, passing, never]}))
    done = subprocess.run([promtool, "test", "rules", str(tests)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def promtool_or_skip() -> str:
    import shutil

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("no promtool on PATH (Debian's prometheus package ships it)")
    return promtool


def _series(name: str, values: str, **labels: str) -> dict[str, str]:
    text = ", ".join(f'{k}="{v}"' for k, v in {"job": "polycheck", "env": "prod", "instance": "", **labels}.items())
    return {"series": f"{name}{{{text}}}", "values": values}


def _runs(location: str, minutes: int = 30, until: int | None = None) -> dict[str, str]:
    """A location's run group pushed every 5 minutes (push_time_seconds), up to minute `until`."""
    last = minutes if until is None else until
    return _series("push_time_seconds", " ".join(str(60 * (min(m, last) - min(m, last) % 5)) for m in range(minutes + 1)),
                   location=location)


def _check(location: str, values: str, check: str = "test_auth::test_login") -> dict[str, str]:
    return _series("polyshop_check_success", values, location=location, check=check, service="auth")


def test_probes_from_several_locations_alert_on_a_quorum_one_location_and_flapping_in_promtool(tmp_path: Path) -> None:
    """promtool's rule unit tests: k of n locations (probe.quorum), a stale location not counted, one location
    failing everything while another passes, and a check flapping."""
    import subprocess

    promtool = promtool_or_skip()
    groups = rule_groups()
    for rule in (r for group in groups for r in group["rules"]):
        rule.pop("annotations", None)
    rule_file = tmp_path / "rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": groups}))
    quorum = [_series("polyshop_probe_quorum", "2x30", location=where) for where in ("eu", "us", "ap")]
    page = {"severity": "page", "job": "polycheck", "env": "prod", "check": "test_auth::test_login", "service": "auth"}
    one_of_three = {"interval": "1m", "input_series": [
        *quorum, _runs("eu"), _runs("us"), _runs("ap"), _check("eu", "0x30"), _check("us", "1x30"), _check("ap", "1x30")],
        "alert_rule_test": [{"eval_time": f"{m}m", "alertname": "PolyshopCheckFailing", "exp_alerts": []} for m in (11, 20, 30)]}
    two_of_three = {"interval": "1m", "input_series": [
        *quorum, _runs("eu"), _runs("us"), _runs("ap"), _check("eu", "0x30"), _check("us", "0x30"), _check("ap", "1x30")],
        "alert_rule_test": [{"eval_time": "9m", "alertname": "PolyshopCheckFailing", "exp_alerts": []},
                            {"eval_time": "11m", "alertname": "PolyshopCheckFailing", "exp_alerts": [{"exp_labels": page}]}]}
    # a location that stopped reporting 20 minutes ago does not count: the one still reporting decides alone
    stale = {"interval": "1m", "input_series": [
        *quorum[:2], _runs("eu"), _runs("us", until=5), _check("eu", "0x30"), _check("us", "0x30")],
        "alert_rule_test": [{"eval_time": "30m", "alertname": "PolyshopCheckFailing", "exp_alerts": [{"exp_labels": page}]}]}
    def counts(location: str, passed: int, failed: int) -> list[dict[str, str]]:
        return [_series("polyshop_probe_checks", f"{passed}x30", location=location, outcome="passed"),
                _series("polyshop_probe_checks", f"{failed}x30", location=location, outcome="failed")]
    blind = {"interval": "1m", "input_series": [*counts("eu", 0, 40), *counts("us", 40, 0)], "alert_rule_test": [
        {"eval_time": "9m", "alertname": "PolyshopProbeLocationFailingEverything", "exp_alerts": []},
        {"eval_time": "11m", "alertname": "PolyshopProbeLocationFailingEverything", "exp_alerts": [{"exp_labels": {
            "severity": "ticket", "env": "prod", "location": "eu"}}]}]}
    everywhere = {"interval": "1m", "input_series": [*counts("eu", 0, 40), *counts("us", 0, 40)], "alert_rule_test": [
        {"eval_time": "20m", "alertname": "PolyshopProbeLocationFailingEverything", "exp_alerts": []}]}
    alternating = " ".join(("1" if (m // 5) % 2 == 0 else "0") for m in range(31))
    flapping = {"interval": "1m", "input_series": [_check("eu", alternating), _check("us", "1x30")], "alert_rule_test": [
        {"eval_time": "30m", "alertname": "PolyshopCheckFlapping", "exp_alerts": [{"exp_labels": {
            "job": "polycheck", "env": "prod", "location": "eu", "check": "test_auth::test_login", "service": "auth",
            "severity": "ticket"}}]}]}
    tests = tmp_path / "rules_test.yml"
    tests.write_text(yaml.safe_dump({"rule_files": [str(rule_file)], "evaluation_interval": "1m",
                                     "tests": [one_of_three, two_of_three, stale, blind, everywhere, flapping]}))
    done = subprocess.run([promtool, "test", "rules", str(tests)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
