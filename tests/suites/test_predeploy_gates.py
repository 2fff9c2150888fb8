"""The pre-deploy gates (`pytest -m predeploy`) run as a release pipeline would: prod's deployment windows at fixed
moments, a real git repository with hotfix, high-risk and route changes, and a loopback server that answers like
the GitHub REST API."""

from __future__ import annotations

import json
import subprocess
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import pytest

from polycheck.core.config import DeployWindow
from polycheck.checks.gates import decide, matches
from tests.support.suite_runner import REPO, SuiteRun, run_suites

TOKEN = "test-token-not-a-secret"
BERLIN = "Europe/Berlin"
WINDOWS = [DeployWindow("allow", "0 9 * * 1-5", "8h", BERLIN, "weekdays 09:00-17:00"),
           DeployWindow("deny", "0 15 * * 5", "9h", BERLIN, "no Friday deploys after 15:00")]


def gates_run(env_dir: Path, *args: str, token: str = "") -> SuiteRun:
    run = run_suites("suites/test_predeploy.py", "-m", "predeploy", "--env", "prod", "--env-dir", str(env_dir),
                     *args, extra_env={"GITHUB_TOKEN": token})
    assert run.returncode in (0, 1, 6), run.describe()
    return run


def case(run: SuiteRun, name: str) -> tuple[str, str]:
    result = run.cases[name]
    return result.outcome, result.message


@pytest.fixture
def env_dir(tmp_path: Path) -> Path:
    """envs/prod.toml as shipped (windows, high-risk rules, GitHub settings)."""
    folder = tmp_path / "envs"
    folder.mkdir()
    (folder / "prod.toml").write_text((REPO / "envs" / "prod.toml").read_text())
    return folder


# -- deployment windows ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("now, outcome, words", [
    ("2026-11-27T16:00:00+01:00", "failed",
     ["Fri 2026-11-27 16:00 CET", "inside the deny window 'no Friday deploys after 15:00'",
      "the next window opens Mon 2026-11-30 09:00 CET", "--emergency REASON"]),
    ("2026-11-28T11:00:00+01:00", "failed",
     ["Sat 2026-11-28 11:00 CET", "outside every allow window (allow window 'weekdays 09:00-17:00'",
      "the next window opens Mon 2026-11-30 09:00 CET"]),
    ("2026-11-24T10:00:00+01:00", "passed", []),
    ("2026-03-29T08:30:00Z", "failed",  # the Sunday Berlin moves to summer time: 10:30 CEST
     ["Sun 2026-03-29 10:30 CEST (UTC+0200)", "outside every allow window",
      "the next window opens Mon 2026-03-30 09:00 CEST (UTC+0200)"]),
], ids=["friday-16h", "saturday", "tuesday-10h", "dst-day"])
def test_deployment_windows_at_a_fixed_moment(env_dir: Path, now: str, outcome: str, words: list[str]) -> None:
    run = gates_run(env_dir, "-k", "window", "--now", now)
    got, message = case(run, "test_deploy_is_inside_a_deployment_window")
    assert got == outcome, run.describe()
    for word in words:
        assert word in message, f"{word!r} not in: {message}"
    assert run.returncode == (1 if outcome == "failed" else 0)


def test_an_emergency_deploys_outside_the_windows_and_says_why(env_dir: Path) -> None:
    run = gates_run(env_dir, "-k", "window", "--now", "2026-11-28T11:00:00+01:00", "--emergency", "INC-42 checkout outage",
                    "-rA")
    assert case(run, "test_deploy_is_inside_a_deployment_window")[0] == "passed", run.describe()
    assert "allowed as an emergency deploy (--emergency): INC-42 checkout outage" in run.output


def test_window_semantics_follow_argo_cd_sync_windows() -> None:
    at = datetime.fromisoformat
    assert decide(WINDOWS, at("2026-11-27T14:59:00+01:00")).allowed, "Friday before 15:00"
    assert not decide(WINDOWS, at("2026-11-27T15:00:00+01:00")).allowed, "deny wins from 15:00"
    assert not decide(WINDOWS, at("2026-11-24T17:00:00+01:00")).allowed, "an allow window ends at start + duration"
    assert decide(WINDOWS, at("2026-11-24T09:00:00+01:00")).allowed, "and opens at its start"
    summer = decide(WINDOWS, at("2026-03-30T07:30:00Z"))  # 09:30 CEST on the Monday after the change
    assert summer.allowed, summer.sentence()
    assert not decide(WINDOWS, at("2026-03-30T06:30:00Z")).allowed, "08:30 CEST is before the window: 09:00 is local time"
    assert decide([], at("2026-11-28T03:00:00+00:00")).allowed, "no windows: always allowed"
    only_deny = [WINDOWS[1]]
    assert decide(only_deny, at("2026-11-28T03:00:00+00:00")).allowed, "only deny windows: allowed outside them"
    autumn = decide(WINDOWS, at("2026-10-24T12:00:00+02:00"))  # Saturday before the change back to CET
    assert autumn.next_open == at("2026-10-26T09:00:00+01:00"), autumn.sentence()


def test_the_window_settings_are_checked_when_the_env_is_loaded(env_dir: Path) -> None:
    path = env_dir / "prod.toml"
    path.write_text(path.read_text().replace('timezone = "Europe/Berlin"                 #', 'timezone = "Europe/Berln" #', 1))
    run = run_suites("suites/test_predeploy.py", "-m", "predeploy", "--env", "prod", "--env-dir", str(env_dir))
    assert run.returncode == 4, run.describe()
    assert "gates.windows[0].timezone: 'Europe/Berln' is not an IANA time zone" in run.output


# -- the change, from git -------------------------------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.test", "GIT_COMMITTER_NAME": "t",
                               "GIT_COMMITTER_EMAIL": "t@example.test", "HOME": str(repo), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A PolyShop-like repository: main, and one branch per kind of change."""
    root = tmp_path / "polyshop"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    files = {"services/order/api/routes.py": "ROUTES = []\n", "services/order/app.py": "app = None\n",
             "contracts/order.yaml": "openapi: 3.0.0\n", "README.md": "shop\n", "services/payment/charge.py": "x = 1\n"}
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")

    def branch(name: str, changes: dict[str, str]) -> None:
        git(root, "checkout", "-q", "-b", name, "main")
        for path, text in changes.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(text)
        git(root, "add", "-A")
        git(root, "commit", "-qm", name)

    branch("hotfix/one-file", {"services/payment/charge.py": "x = 2\n"})
    branch("hotfix/three-files", {"services/payment/charge.py": "x = 3\n", "README.md": "shop!\n", "services/order/app.py": "app = 1\n"})
    branch("feature/migration", {"services/order/migrations/0007_add_column.sql": "ALTER TABLE orders ADD x int;\n"})
    branch("feature/route", {"services/order/api/routes.py": "ROUTES = ['/api/orders/export']\n"})
    branch("feature/route-and-contract", {"services/order/api/routes.py": "ROUTES = ['/api/orders/export']\n",
                                          "contracts/order.yaml": "openapi: 3.0.0\npaths: {}\n"})
    branch("feature/decorator", {"services/order/app.py": "app = None\n@app.get('/api/orders/export')\ndef export(): ...\n"})
    git(root, "checkout", "-q", "main")
    return root


def change_run(env_dir: Path, repo: Path, head: str, *args: str) -> SuiteRun:
    return gates_run(env_dir, "--now", "2026-11-24T10:00:00+01:00", "--repo-dir", str(repo), "--base-ref", "main",
                     "--head-ref", head, *args)


def test_a_hotfix_changes_at_most_one_file_unless_approved(env_dir: Path, repo: Path) -> None:
    one = change_run(env_dir, repo, "hotfix/one-file")
    assert case(one, "test_hotfix_changes_at_most_one_file")[0] == "passed", one.describe()
    three = change_run(env_dir, repo, "hotfix/three-files")
    outcome, message = case(three, "test_hotfix_changes_at_most_one_file")
    assert outcome == "failed", three.describe()
    assert "hotfix branch hotfix/three-files changes 3 files (README.md, services/order/app.py, services/payment/charge.py)" in message
    assert "runbook Section 2.2 allows 1 unless approved (--hotfix-approved NAME)" in message
    approved = change_run(env_dir, repo, "hotfix/three-files", "--hotfix-approved", "lead-on-call")
    assert case(approved, "test_hotfix_changes_at_most_one_file")[0] == "passed", approved.describe()
    feature = change_run(env_dir, repo, "feature/migration")
    outcome, message = case(feature, "test_hotfix_changes_at_most_one_file")
    assert outcome == "skipped" and "not a hotfix: branch 'feature/migration'" in message


def test_a_high_risk_change_needs_sre_approval(env_dir: Path, repo: Path) -> None:
    run = change_run(env_dir, repo, "feature/migration")
    outcome, message = case(run, "test_high_risk_change_has_sre_approval")
    assert outcome == "failed", run.describe()
    assert "is a high-risk change: schema migration (files services/order/migrations/0007_add_column.sql)" in message
    assert "require SRE approval (--sre-approved NAME" in message
    approved = change_run(env_dir, repo, "feature/migration", "--sre-approved", "dana")
    assert case(approved, "test_high_risk_change_has_sre_approval")[0] == "passed"
    labelled = change_run(env_dir, repo, "hotfix/one-file", "--pr-labels", "kafka-partitions,bug")
    outcome, message = case(labelled, "test_high_risk_change_has_sre_approval")
    assert outcome == "failed" and "Kafka partition change (label kafka-partitions)" in message
    plain = change_run(env_dir, repo, "hotfix/one-file")
    assert case(plain, "test_high_risk_change_has_sre_approval")[0] == "passed"


def test_route_changes_need_the_openapi_file(env_dir: Path, repo: Path) -> None:
    for head in ("feature/route", "feature/decorator"):
        run = change_run(env_dir, repo, head)
        outcome, message = case(run, "test_route_changes_come_with_the_openapi_contract")
        assert outcome == "failed", run.describe()
        assert "changes routes in services/order/" in message and "runbook Section 5 'OpenAPI updated'" in message
    both = change_run(env_dir, repo, "feature/route-and-contract")
    outcome, message = case(both, "test_route_changes_come_with_the_openapi_contract")
    assert outcome == "passed", both.describe()
    none = change_run(env_dir, repo, "hotfix/one-file")
    assert case(none, "test_route_changes_come_with_the_openapi_contract")[0] == "passed"


def test_an_unknown_ref_is_inconclusive(env_dir: Path, repo: Path) -> None:
    run = change_run(env_dir, repo, "no/such-branch")
    outcome, message = case(run, "test_hotfix_changes_at_most_one_file")
    assert outcome == "inconclusive" and "cannot read the change" in message, run.describe()
    assert run.returncode == 6 and "polycheck: INCONCLUSIVE" in run.output


def test_glob_matching() -> None:
    assert matches("services/order/migrations/0001.sql", ["**/migrations/**"])
    assert matches("migrations/0001.py", ["**/migrations/**"])
    assert matches("db/schema.sql", ["**/*.sql"]) and matches("schema.sql", ["**/*.sql"])
    assert matches("hotfix/x", ["hotfix/*"]) and not matches("hotfix/x/y", ["hotfix/*"])
    assert not matches("services/order/app.py", ["**/migrations/**"])


# -- GitHub ------------------------------------------------------------------------------------------------


@pytest.fixture
def github(env_dir: Path) -> Iterator[dict[str, Any]]:
    """A loopback server answering like GitHub's REST API for pull request #7 of polyshop/polyshop."""
    state: dict[str, Any] = {
        "reviews": [{"user": {"login": "alice"}, "state": "APPROVED"}],
        "check_runs": [{"name": "test", "status": "completed", "conclusion": "success"}],
        "statuses": [{"context": "security/trivy", "state": "success"}],
        "labels": [], "fail": 0, "seen": [],
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            state["seen"].append((self.path, self.headers.get("Authorization")))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self.answer(401, {"message": "Bad credentials"})
            if state["fail"]:
                return self.answer(state["fail"], {"message": "Server Error"})
            path = self.path.split("?")[0]
            routes = {
                "/repos/polyshop/polyshop/pulls/7": {"number": 7, "head": {"sha": "abc123def4567890"}, "labels": state["labels"]},
                "/repos/polyshop/polyshop/pulls/7/reviews": state["reviews"],
                "/repos/polyshop/polyshop/commits/abc123def4567890/check-runs":
                    {"total_count": len(state["check_runs"]), "check_runs": state["check_runs"]},
                "/repos/polyshop/polyshop/commits/abc123def4567890/status":
                    {"state": "success", "statuses": state["statuses"], "total_count": len(state["statuses"])},
            }
            if path not in routes:
                return self.answer(404, {"message": "Not Found"})
            self.answer(200, routes[path])

        def answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    path = env_dir / "prod.toml"
    path.write_text(path.read_text().replace('github_token = "${GITHUB_TOKEN}"',
                                             f'github_token = "${{GITHUB_TOKEN}}"\ngithub_api_url = "http://127.0.0.1:{server.server_port}"'))
    yield state
    server.shutdown()
    server.server_close()


def pr_run(env_dir: Path, *args: str, token: str = TOKEN) -> SuiteRun:
    return gates_run(env_dir, "-k", "approved or green or high_risk", "--pr", "7", *args, token=token)


def test_an_approved_pr_with_green_ci_passes(env_dir: Path, github: dict[str, Any]) -> None:
    run = pr_run(env_dir)
    assert case(run, "test_pull_request_is_approved") == ("passed", ""), run.describe()
    assert case(run, "test_ci_is_green")[0] == "passed"
    assert all(auth == f"Bearer {TOKEN}" for _, auth in github["seen"])


def test_changes_requested_or_red_ci_fail(env_dir: Path, github: dict[str, Any]) -> None:
    github["reviews"].append({"user": {"login": "bob"}, "state": "CHANGES_REQUESTED"})
    github["check_runs"].append({"name": "integration", "status": "completed", "conclusion": "failure"})
    github["statuses"].append({"context": "security/snyk", "state": "pending"})
    run = pr_run(env_dir)
    outcome, message = case(run, "test_pull_request_is_approved")
    assert outcome == "failed" and "pull request #7 of polyshop/polyshop: changes requested by bob" in message, run.describe()
    outcome, message = case(run, "test_ci_is_green")
    assert outcome == "failed" and "is not green: integration failure, security/snyk pending" in message
    github["reviews"][:] = [{"user": {"login": "carol"}, "state": "COMMENTED"}]
    github["check_runs"][:] = []
    github["statuses"][:] = []
    again = pr_run(env_dir)
    assert "is not approved by any reviewer" in case(again, "test_pull_request_is_approved")[1]
    assert "CI did not run" in case(again, "test_ci_is_green")[1]


def test_pr_labels_from_github_make_a_high_risk_change(env_dir: Path, github: dict[str, Any], repo: Path) -> None:
    github["labels"] = [{"name": "payment-provider"}]
    run = pr_run(env_dir, "--repo-dir", str(repo), "--base-ref", "main", "--head-ref", "hotfix/one-file")
    outcome, message = case(run, "test_high_risk_change_has_sre_approval")
    assert outcome == "failed" and "payment provider update (label payment-provider)" in message, run.describe()


def test_without_a_token_the_github_checks_skip_naming_it(env_dir: Path, github: dict[str, Any]) -> None:
    run = pr_run(env_dir, token="")
    for name in ("test_pull_request_is_approved", "test_ci_is_green"):
        outcome, message = case(run, name)
        assert outcome == "skipped" and "no GitHub token: the environment variable GITHUB_TOKEN is not set" in message
    assert github["seen"] == []


def test_a_github_outage_is_inconclusive(env_dir: Path, github: dict[str, Any]) -> None:
    github["fail"] = 502
    run = pr_run(env_dir)
    outcome, message = case(run, "test_pull_request_is_approved")
    assert outcome == "inconclusive" and "HTTP 502" in message, run.describe()
