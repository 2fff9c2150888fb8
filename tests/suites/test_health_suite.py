"""The health suite against the local stack: all pass when healthy; each fault fails exactly its checks."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.selftest_env import HEALTH_BUDGET, READ_TIMEOUT, SLOW_ANSWER
from tests.support.stack_control import StackControl
from tests.support.suite_runner import run_suites

SERVICES = ["auth", "product", "inventory", "order", "payment", "notification", "search", "gateway"]
ROUTED = [s for s in SERVICES if s != "gateway"]
DIRECT_CHECKS = [
    "test_health_reports_ok",
    "test_runs_the_release_version",
    "test_liveness_probe_answers",
    "test_readiness_probe_answers",
    "test_metrics_expose_contract_families",
]
SUITE = "suites/test_health.py"


def every_check_of(service: str) -> set[str]:
    checks = {f"{name}[{service}]" for name in DIRECT_CHECKS}
    if service in ROUTED:
        checks.add(f"test_gateway_routes_to_service[{service}]")
    return checks


def all_checks() -> set[str]:
    return set().union(*(every_check_of(s) for s in SERVICES))


@dataclass(frozen=True)
class FaultCase:
    service: str
    kind: str
    expected_failures: set[str]
    evidence: str  # every failure message must match this
    params: dict[str, Any] = field(default_factory=dict)
    decided: frozenset[str] | None = None  # the rollback decisions (default: the service); none for an impaired dependency

    @property
    def id(self) -> str:
        return f"{self.kind}-{self.service}" + ("-" + "-".join(f"{k}" for k in self.params) if self.params else "")


FAULTS = [
    FaultCase("order", "down", every_check_of("order"), r"connection failed|could not reach the service"),
    FaultCase(
        "gateway", "down", every_check_of("gateway") | {f"test_gateway_routes_to_service[{s}]" for s in ROUTED},
        r"connection failed",
    ),
    FaultCase("payment", "hang", every_check_of("payment"), rf"no answer within the read timeout of {READ_TIMEOUT:g} s"),
    # the version check has no latency budget: a slow service still runs the right version
    FaultCase(
        "search", "slow", every_check_of("search") - {"test_runs_the_release_version[search]"},
        rf"over the {HEALTH_BUDGET:g} s (health latency )?budget", {"seconds": SLOW_ANSWER},
    ),
    FaultCase("inventory", "errors", every_check_of("inventory"), r"\b500\b", {"ratio": 1.0}),
    FaultCase("product", "errors", {"test_gateway_routes_to_service[product]"}, r"got 500", {"ratio": 1.0, "paths": ["/api/"]}),
    FaultCase(
        "order", "health", {"test_health_reports_ok[order]"},
        r"status is 'degraded', expected 'ok' \(impaired dependencies: \{'postgres': 'degraded'\}\)", {"status": "degraded"},
        frozenset(),  # a rollback would not mend postgres: escalated instead (rollback.on_dependency)
    ),
    FaultCase("auth", "health", {"test_health_reports_ok[auth]"}, r"expected HTTP 200, got 503: .*\"down\"", {"status": "down"},
              frozenset()),
    FaultCase("notification", "not_ready", {"test_readiness_probe_answers[notification]"}, r"readiness probe answered HTTP 503"),
    FaultCase(
        "order", "drop_metric", {"test_metrics_expose_contract_families[order]"},
        r"order does not export kafka_consumergroup_lag", {"family": "kafka_consumergroup_lag"},
    ),
    FaultCase(
        "search", "wrong_version", {"test_runs_the_release_version[search]"},
        r"search runs version '1.2.9', but this release is '1.3.0'", {"version": "1.2.9"},
    ),
]


def test_healthy_stack_passes_every_check(stack: StackControl) -> None:
    run = run_suites("-m", "smoke", SUITE, stack_file=stack.stack_file)
    assert run.returncode == 0, run.describe()
    assert run.ids("passed") == all_checks(), run.describe()
    assert len(all_checks()) == 8 * 5 + 7
    assert "never sent it" not in run.output, run.output  # every read a marker declares is the one its check sends


def test_healthy_stack_passes_under_xdist(stack: StackControl) -> None:
    run = run_suites("-m", "smoke", SUITE, "-n", "2", stack_file=stack.stack_file)
    assert run.returncode == 0, run.describe()
    assert run.ids("passed") == all_checks(), run.describe()


@pytest.mark.parametrize("case", FAULTS, ids=lambda c: c.id)
def test_fault_fails_exactly_its_checks(stack: StackControl, case: FaultCase, tmp_path: Path) -> None:
    stack.set_fault(case.service, case.kind, **case.params)
    log = tmp_path / "rollback.jsonl"
    run = run_suites("-m", "smoke", SUITE, "--rollback", "off", f"--rollback-log={log}", stack_file=stack.stack_file)
    assert run.returncode == 1, run.describe()
    records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    decided = {case.service} if case.decided is None else case.decided
    assert {r["service"] for r in records if r["step"] == "decision"} == decided, records  # only the culprit
    assert run.failed == case.expected_failures, run.describe()
    assert run.ids("passed") == all_checks() - case.expected_failures, run.describe()
    for name in case.expected_failures:
        message = run.cases[name].message
        assert re.search(case.evidence, message), f"{name}: {message!r} does not match {case.evidence!r}"
        assert case.service in message, f"{name}: the message does not name {case.service}: {message!r}"
        assert re.search(r"trace-id [0-9a-f]{32}, request-id [0-9a-f]{32}", message), f"{name}: no trace id: {message!r}"
        assert "Traceback" not in message


TEAM_READS = """
import pytest
from polycheck.checks.health import LIVE, READY, expect_probe_ok

pytestmark = [pytest.mark.smoke, pytest.mark.concurrent]


@pytest.mark.requests(READY)
def test_declares_ready_but_sends_live(service_client):
    expect_probe_ok(service_client, LIVE, "liveness", within=2.0)


@pytest.mark.requests(LIVE)
def test_declares_and_sends_live(service_client):
    expect_probe_ok(service_client, LIVE, "liveness", within=2.0)


@pytest.mark.requests("GET /health/ready")
def test_skips_before_its_read(service_client):
    pytest.skip("nothing to compare with")
"""


def test_a_declared_read_its_check_never_sends_is_named(stack: StackControl, tmp_path: Path) -> None:
    """A marker that names a read the check does not make (they drifted apart) is said at the end of the run,
    naming the check and the path; a check that sends what it declares, or skips before its read, is not named."""
    checks = tmp_path / "test_team_reads.py"
    checks.write_text(TEAM_READS)
    run = run_suites("-m", "smoke", str(checks), "-k", "order", stack_file=stack.stack_file)
    assert run.returncode == 0, run.describe()
    named = [line for line in run.output.splitlines() if "never sent it" in line]
    assert len(named) == 1, run.output
    assert "test_declares_ready_but_sends_live[order] declares GET /health/ready" in named[0], named


def test_a_hanging_service_fails_within_the_timeout(stack: StackControl) -> None:
    """Each check of a hanging service ends within the read timeout (plus connection setup), never hangs the run."""
    stack.set_fault("order", "hang")
    run = run_suites("-m", "smoke", SUITE, "-k", "order", stack_file=stack.stack_file)
    assert run.failed == every_check_of("order"), run.describe()
    for name in every_check_of("order"):
        assert run.cases[name].seconds < READ_TIMEOUT + 1.0, f"{name} took {run.cases[name].seconds:.1f} s"


def test_failing_checks_attach_their_http_exchanges_to_allure(stack: StackControl) -> None:
    stack.set_fault("inventory", "health", status="degraded", dependency="kafka")
    run = run_suites("-m", "smoke", SUITE, "-k", "inventory", stack_file=stack.stack_file)
    assert run.failed == {"test_health_reports_ok[inventory]"}, run.describe()
    assert run.allure_dir is not None
    results = [json.loads(p.read_text()) for p in Path(run.allure_dir).glob("*-result.json")]
    failed = [r for r in results if r["status"] == "failed" and not r["name"].startswith("rollback of ")]
    assert [r["name"] for r in failed] == ["test_health_reports_ok[inventory]"]
    # inventory reports kafka impaired: escalated, not rolled back (rollback.on_dependency = "escalate")
    assert [r["name"] for r in results if r["name"].startswith("rollback of ")] == []
    attachments = failed[0].get("attachments", [])
    assert len(attachments) == 1 and "GET " in attachments[0]["name"] and "-> HTTP 200" in attachments[0]["name"]
    text = (Path(run.allure_dir) / attachments[0]["source"]).read_text()
    assert "x-synthetic: true" in text.lower() and '"kafka": "degraded"' in text.replace('":"', '": "')
    passed = [r for r in results if r["status"] == "passed"]
    assert passed and all(not r.get("attachments") for r in passed)


def test_one_stack_is_started_for_an_xdist_run(tmp_path: Path) -> None:
    """Under -n 2 the controller starts the local stack and both workers use it."""
    starts = tmp_path / "starts.log"
    run = run_suites("-m", "smoke", SUITE, "-n", "2", extra_env={"POLYSHOP_STACK_STARTS": str(starts)})
    assert run.returncode == 0, run.describe()
    assert len(starts.read_text().split()) == 1
    assert "local PolyShop stack started" in run.output


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--env", "nosuch"], r"ERROR: polycheck: unknown environment 'nosuch'.*Valid environments: local, prod, staging"),
        (["--env", "broken", "--env-dir={tmp}"], r"ERROR: polycheck: .*broken.toml: services.order: unknown key 'urll'; valid keys: url"),
        (["--env", "bad", "--env-dir={tmp}"], r"ERROR: polycheck: .*bad.toml is not valid TOML"),
        (["--concurrency", "0"], r"ERROR: polycheck: --concurrency must be at least 1, got 0"),
    ],
    ids=["unknown-env", "typo-key", "malformed-toml", "no-concurrency"],
)
def test_config_mistakes_are_usage_errors_not_tracebacks(tmp_path: Path, args: list[str], expected: str) -> None:
    (tmp_path / "broken.toml").write_text('[environment]\nlocal_stack = true\n[services.order]\nurll = "http://x"\n')
    (tmp_path / "bad.toml").write_text("[environment\n")
    run = run_suites("-m", "smoke", *[a.format(tmp=tmp_path) for a in args])
    assert run.returncode == 4, run.describe()
    assert re.search(expected, run.output, re.DOTALL), run.output
    assert "Traceback" not in run.output
