"""Sign-off pieces on their own: the secret registry and the file scrubber, run folders, Allure results and history,
the executor, evidence links, and the sign-off's verdicts and text."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import pytest

from polycheck.core.config import LinksConfig, Secret
from polycheck.core.redact import REDACTED, forget_secrets, known_secrets, redact_secrets, redact_text, register_secret, shown_url
from polycheck.core.scrub import scrub_file, scrub_tree
from polycheck.clients.shop import Account
from polycheck.signoff.executor import allure_executor, detect_executor
from polycheck.signoff.links import evidence_links
from polycheck.signoff.runs import ALLURE_RESULTS as ALLURE_RESULTS_DIR
from polycheck.signoff.results import carry_history, finalise_results, history_point, stable_id
from polycheck.signoff.runs import create_run_folder, latest_run, point_latest, previous_finished, prune, runs_bytes, tree_bytes
from polycheck.core.steps import epic_of, steps_of
from polycheck.signoff.summary import CheckOutcome, SignOff, not_run_steps, step_verdict

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_registry() -> Iterator[None]:
    forget_secrets()
    yield
    forget_secrets()


# -- secrets -----------------------------------------------------------------------------------------------
def test_revealed_secrets_and_passwords_are_redacted_wherever_they_show(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLY_TEST_WEBHOOK", "https://hooks.example/T0/B0/s3cr3t?x=y z")
    url = Secret("${POLY_TEST_WEBHOOK}").reveal()
    Account("probe@synthetic.polyshop.test", "hunter2-very-secret")
    assert set(known_secrets()) == {url, "hunter2-very-secret"}
    text = f'textbox "Password": hunter2-very-secret\nPOST {url}\nencoded: https%3A%2F%2Fhooks.example%2FT0%2FB0%2Fs3cr3t%3Fx%3Dy%20z'
    out = redact_secrets(text)
    assert "hunter2" not in out and "s3cr3t" not in out and out.count(REDACTED) == 3, out
    assert "probe@synthetic.polyshop.test" not in known_secrets()
    assert redact_text('{"detail": "hunter2-very-secret"}') == json.dumps({"detail": REDACTED})


def test_shown_identities_are_not_registered_and_short_secrets_are(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLY_TEST_EMAIL", "probe@synthetic.polyshop.test")
    Secret("${POLY_TEST_EMAIL}").reveal(secret=False)
    register_secret("abc")
    assert known_secrets() == ("abc",)  # a secret of any length (issue #17), replaced only where it stands whole
    assert redact_secrets("abc, abcd, xabc, abc_1, abc-1") == "[REDACTED], abcd, xabc, abc_1, [REDACTED]-1"


def test_shown_url_keeps_scheme_and_host_only() -> None:
    assert shown_url("https://hooks.slack.com/services/T0/B0/XX?token=1") == "https://hooks.slack.com/…"
    assert shown_url("http://user:pw@127.0.0.1:8080/") == "http://127.0.0.1:8080"
    assert shown_url("not a url") == REDACTED


def _zip(members: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return out.getvalue()


def test_scrub_rewrites_files_and_trace_zips(tmp_path: Path) -> None:
    register_secret("Pw-topsecret-1")
    snapshot = '{"snapshot":["INPUT",{"type":"password","name":"password","__playwright_value_":"not-registered-either"}]}'
    network = '{"request":{"headers":[{"name":"Authorization","value":"Bearer abc.def"},{"name":"Accept","value":"x"}]}}'
    (tmp_path / "trace.zip").write_bytes(_zip({"trace.trace": snapshot + "\nPw-topsecret-1", "trace.network": network}))
    (tmp_path / "result.json").write_text('{"message": "typed Pw-topsecret-1"}')
    (tmp_path / "clean.txt").write_text("nothing here")
    changed = {p.name for p in scrub_tree(tmp_path)}
    assert changed == {"trace.zip", "result.json"}
    with zipfile.ZipFile(tmp_path / "trace.zip") as archive:
        trace, net = archive.read("trace.trace").decode(), archive.read("trace.network").decode()
    assert "not-registered-either" not in trace and "Pw-topsecret" not in trace and '"__playwright_value_":""' in trace
    assert "abc.def" not in net and '"value":"x"' in net
    assert "Pw-topsecret" not in (tmp_path / "result.json").read_text()
    assert not scrub_file(tmp_path / "clean.txt")


# -- run folders ---------------------------------------------------------------------------------------------
def test_run_folders_latest_previous_and_pruning(tmp_path: Path) -> None:
    folders = [create_run_folder(tmp_path, f"run{i}", 1_800_000_000 + i * 60) for i in range(4)]
    for folder in folders[:3]:
        (folder / "signoff.json").write_text("{}")
    assert previous_finished(tmp_path, folders[3]) == folders[2]
    point_latest(tmp_path, folders[2])
    assert latest_run(tmp_path) == folders[2].resolve() and os.readlink(tmp_path / "latest").startswith("runs/")
    removed = prune(tmp_path, 2, current=folders[3])
    assert removed == folders[:2] and sorted((tmp_path / "runs").iterdir()) == folders[2:]


def test_an_unfinished_recent_run_is_never_pruned(tmp_path: Path) -> None:
    running = create_run_folder(tmp_path, "running", 1_800_000_000)
    current = create_run_folder(tmp_path, "current", 1_800_000_600)
    assert prune(tmp_path, 1, current=current) == [] and running.is_dir()


def _finished_run(reports: Path, index: int, size: int) -> Path:
    folder = create_run_folder(reports, f"run{index}", 1_800_000_000 + index * 60)
    (folder / "signoff.json").write_text("{}")
    (folder / ALLURE_RESULTS_DIR / "attachment.bin").write_bytes(b"x" * size)
    return folder


def test_old_runs_are_pruned_until_the_run_folders_fit_the_byte_limit(tmp_path: Path) -> None:
    """--keep-mb: 30 runs of 100 kB each, 1 MB allowed: the newest ones that fit stay, however many --keep-runs allows."""
    folders = [_finished_run(tmp_path, i, 100_000) for i in range(30)]
    current = create_run_folder(tmp_path, "current", 1_800_000_000 + 31 * 60)
    removed = prune(tmp_path, 20, keep_bytes=1_000_000, current=current)
    kept = sorted(p for p in (tmp_path / "runs").iterdir())
    assert kept[-1] == current and kept[:-1] == folders[-len(kept) + 1:], "the oldest go first, the current run stays"
    assert removed == folders[:len(removed)] and len(kept) in (9, 10), len(kept)  # 8 or 9 older runs of 100 kB (+ folders) and the current
    assert tree_bytes(tmp_path) <= 1_000_000 < tree_bytes(tmp_path) + 100_000, "as many as fit: one more would not"
    assert prune(tmp_path, 20, keep_bytes=1_000_000, current=current) == [], "under the limit: nothing more goes"


def test_the_audit_log_and_the_ledger_in_the_reports_dir_count_against_the_byte_limit(tmp_path: Path) -> None:
    """The limit bounds the whole reports folder: 400 kB of audit log and ledger leave room for fewer runs."""
    folders = [_finished_run(tmp_path, i, 100_000) for i in range(10)]
    (tmp_path / "rollback-log.jsonl").write_bytes(b"x" * 300_000)
    (tmp_path / "leftovers-local.jsonl").write_bytes(b"x" * 100_000)
    prune(tmp_path, 20, keep_bytes=1_000_000, current=folders[-1])
    kept = sorted((tmp_path / "runs").iterdir())
    assert kept == folders[-len(kept):] and len(kept) in (4, 5), "5 runs of 100 kB (4 with their folders' bytes) + 400 kB fit under 1 MB"
    assert tree_bytes(tmp_path) <= 1_000_000 < tree_bytes(tmp_path) + 100_000
    assert (tmp_path / "rollback-log.jsonl").is_file() and (tmp_path / "leftovers-local.jsonl").is_file(), "only runs are deleted"


def test_without_a_byte_limit_the_bytes_grow_with_the_runs(tmp_path: Path) -> None:
    """The other way round: only the count bounds the folders, so 20 runs of 100 kB keep 2 MB."""
    for i in range(30):
        _finished_run(tmp_path, i, 100_000)
    prune(tmp_path, 20)
    assert len(list((tmp_path / "runs").iterdir())) == 20 and runs_bytes(tmp_path) >= 2_000_000


def test_the_current_run_is_kept_even_alone_over_the_byte_limit(tmp_path: Path) -> None:
    old = _finished_run(tmp_path, 0, 10)
    current = _finished_run(tmp_path, 1, 50_000)
    running = create_run_folder(tmp_path, "running", 1_800_000_000 + 120)  # unfinished, recent: another run's
    assert prune(tmp_path, 20, keep_bytes=1_000, current=current) == [old]
    assert current.is_dir() and running.is_dir()


def test_the_audit_log_and_the_ledger_follow_the_reports_dir(tmp_path: Path) -> None:
    """Their relative defaults (reports/rollback-log.jsonl, reports/leftovers-{env}.jsonl) are in --reports-dir; an
    explicit path elsewhere stays as given; without a reports dir they keep the old rootdir-relative place."""
    from polycheck.core.config import load_env
    from polycheck.scope.cleanup import journal_path
    from polycheck.scope.run import Run, RunInputs

    repo = Path(__file__).resolve().parents[2]
    inputs = RunInputs(env="local", env_dir=str(repo / "envs"), contracts=str(repo / "contracts"), run_id="r1", rollback_log="",
                       reports_dir=str(tmp_path / "out"))
    run = Run.resolve(inputs)
    assert run.rollback_log == tmp_path / "out" / "rollback-log.jsonl"
    assert run.ledger_path == tmp_path / "out" / "leftovers-local.jsonl"
    moved = run.with_inputs(rollback_log="audit/decisions.jsonl", ledger="/var/lib/polycheck/leftovers.jsonl")
    assert moved.rollback_log == Path("audit/decisions.jsonl") and moved.ledger_path == Path("/var/lib/polycheck/leftovers.jsonl")
    unset = run.with_inputs(reports_dir="")
    assert unset.rollback_log == Path("reports/rollback-log.jsonl")
    config = load_env("local", repo / "envs")
    assert journal_path(config, tmp_path, None, tmp_path / "out") == tmp_path / "out" / "leftovers-local.jsonl", "cleanup sweeps the same"
    assert journal_path(config, tmp_path, None) == tmp_path / "reports" / "leftovers-local.jsonl"


# -- Allure results -----------------------------------------------------------------------------------------
def _result(tmp: Path, uid: str, status: str, verdict: str | None = None, trace: str = "", stop: int = 2,
            full: str = "suites.test_health#test_health_reports_ok") -> None:
    labels = [{"name": "verdict", "value": verdict}] if verdict else []
    (tmp / f"{uid}-result.json").write_text(json.dumps({
        "uuid": uid, "name": "test_health_reports_ok[order]", "fullName": full, "status": status, "start": 1, "stop": stop,
        "statusDetails": {"message": "Failed: x", "trace": trace}, "labels": labels,
        "parameters": [{"name": "service", "value": "'order'"}]}))


def test_results_follow_the_verdicts_and_carry_module_independent_ids(tmp_path: Path) -> None:
    _result(tmp_path, "a", "skipped", "blocked", "('/x.py', 3, 'blocked by auth: login refused')")
    _result(tmp_path, "b", "broken", "failed", full="suites.test_other#test_checkout")
    _result(tmp_path, "c", "failed", stop=2, full="suites.test_renamed#test_retry")
    _result(tmp_path, "d", "passed", stop=5, full="suites.test_renamed#test_retry")
    finalise_results(tmp_path, environment={"env": "local"}, executor=detect_executor({}, host="h"))
    loaded = {p.name.split("-")[0]: json.loads(p.read_text()) for p in tmp_path.glob("*-result.json")}
    assert loaded["a"]["status"] == "broken" and loaded["a"]["statusDetails"]["message"] == "blocked by auth: login refused"
    assert loaded["b"]["status"] == "failed"
    assert loaded["d"]["statusDetails"].get("flaky") is True and loaded["c"]["historyId"] == loaded["d"]["historyId"]
    assert stable_id({"fullName": "suites.test_renamed#test_retry"}) == stable_id({"fullName": "suites.moved.test_x#test_retry"})
    assert (tmp_path / "environment.properties").read_text() == "env=local\n"
    assert {c["name"] for c in json.loads((tmp_path / "categories.json").read_text())} >= {
        "Release defect", "Blocked by a dependency", "Checker infrastructure / inconclusive", "Flaky: passed on a retry"}
    assert json.loads((tmp_path / "executor.json").read_text())["reportName"]


def test_history_carries_the_previous_run_and_matches_allure(tmp_path: Path) -> None:
    previous = tmp_path / "previous"
    previous.mkdir()
    _result(previous, "a", "passed")
    finalise_results(previous, environment={}, executor={})
    target = tmp_path / "history.jsonl"
    assert carry_history(None, previous, target, timestamp_ms=1) == 1
    point = json.loads(target.read_text())
    assert list(point["testResults"].values())[0]["status"] == "passed"
    allure = REPO / "node_modules" / ".bin" / "allure"
    if not allure.exists() or shutil.which("node") is None:
        return  # the report's own self-test covers it where Allure 3 is installed
    theirs = tmp_path / "theirs.jsonl"
    subprocess.run([str(allure), "history", "--history-path", str(theirs), str(previous)], cwd=tmp_path, check=True,
                   capture_output=True, timeout=120)
    assert set(json.loads(theirs.read_text())["testResults"]) == set(point["testResults"]), "history ids differ from Allure 3's"
    assert history_point(tmp_path / "missing", timestamp_ms=1) is None


# -- executor, links, steps, sign-off -----------------------------------------------------------------------
def test_executor_of_github_actions_the_cronjob_and_a_shell() -> None:
    github = detect_executor({"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.example", "GITHUB_REPOSITORY": "o/r",
                              "GITHUB_RUN_ID": "42", "GITHUB_RUN_NUMBER": "7", "GITHUB_WORKFLOW": "deploy", "GITHUB_ACTOR": "rm"}, host="h")
    assert github["buildUrl"] == "https://github.example/o/r/actions/runs/42" and github["who"] == "rm"
    assert allure_executor(github, "R")["buildName"] == "deploy #7"
    cron = detect_executor({"POLYCHECK_EXECUTOR": "cronjob", "POLYCHECK_JOB_NAME": "polycheck-synthetic-29112026"}, host="pod")
    assert cron["type"] == "kubernetes" and "polycheck-synthetic-29112026" in cron["buildName"]
    argo = detect_executor({"POLYCHECK_EXECUTOR": "argo-analysis", "POLYCHECK_JOB_NAME": "uid.polycheck.1"}, host="pod")
    assert argo["type"] == "argo" and "uid.polycheck.1" in argo["buildName"]
    assert detect_executor({}, host="laptop")["type"] == "local"


def test_evidence_links_from_the_failure_message() -> None:
    links = LinksConfig(grafana="https://g/d/x?var-service={service}&from={from_ms}&to={to_ms}", jaeger="https://j/trace/{trace_id}",
                        loki="https://l/explore?q={request_id}")
    text = f"[order] GET /x: 500\n  (trace-id {'a' * 32}, request-id {'b' * 32})"
    found = dict(evidence_links(links, text, service="order", env="prod", failed_at_ms=1_000_000))
    assert any(url == f"https://j/trace/{'a' * 32}" for url in found.values())
    assert any(url == f"https://l/explore?q={'b' * 32}" for url in found.values())
    assert "https://g/d/x?var-service=order&from=700000&to=1300000" in found.values()
    assert evidence_links(LinksConfig(jaeger="https://j/{trace_id}"), "no ids", service=None, env="e", failed_at_ms=0) == []


def test_steps_and_epics_follow_the_markers() -> None:
    assert steps_of({"smoke", "synthetic", "rollback"}) == ("smoke", "synthetic")
    assert epic_of({"smoke", "rollout"}) == "Step 3 Kubernetes rollout"
    assert epic_of({"postdeploy", "smoke"}) == "Section 6 post-deploy validation"
    assert step_verdict(Counter(passed=3, inconclusive=1)) == "INCONCLUSIVE"
    assert step_verdict(Counter(passed=3, blocked=1)) == "NO-GO" and step_verdict(Counter()) == "NOT RUN"  # (the sign-off reads a step no check covers as "not selected")


def test_the_signoff_names_each_step_failure_rollback_and_place(tmp_path: Path) -> None:
    register_secret("Pw-topsecret-2")
    signoff = SignOff(
        verdict="NO-GO", exit_code=1, env="prod", release="1.3.0", run_id="abc", run_folder="reports/runs/x", started=0, finished=12.5,
        executor={"who": "rm", "host": "ci-1", "ci_url": "https://ci/1", "buildName": "deploy #1", "type": "github"},
        checks=[CheckOutcome("suites/test_rollout.py::test_rollout_is_complete[order]", "failed", "order", "crashloop Pw-topsecret-2",
                             ("smoke", "rollout")),
                CheckOutcome("suites/test_health.py::test_health_reports_ok[auth]", "passed", steps=("smoke", "synthetic"))],
        rollbacks=[{"service": "order", "step": "decision", "outcome": "auto", "time": "t"},
                   {"service": "order", "step": "kubernetes-undo", "outcome": "done", "time": "t", "detail": "revision 2"}],
        escalations=[{"service": "order", "step": "escalation", "outcome": "done", "time": "t", "detail": "sent"}])
    lines = signoff.summary_lines()
    assert lines[0] == "NO-GO: env prod, release 1.3.0, run abc, 12.5 s, exit 1"
    assert any("Step 3 Kubernetes rollout" in line and "NO-GO" in line for line in lines)
    assert any("[culprit: order]" in line for line in lines)
    assert "rollbacks: order (auto, kubernetes-undo done); escalations: 1 sent" in "\n".join(lines)
    assert "https://ci/1" in lines[-1]
    signoff.write(tmp_path)
    data = json.loads((tmp_path / "signoff.json").read_text())
    assert data["verdict"] == "NO-GO" and data["problems"][0]["culprit"] == "order" and data["ci_url"] == "https://ci/1"
    assert {s["key"]: s["verdict"] for s in data["steps"]}["rollout"] == "NO-GO"
    both = (tmp_path / "signoff.json").read_text() + (tmp_path / "signoff.md").read_text()
    assert "Pw-topsecret-2" not in both and lines[0] in (tmp_path / "signoff.md").read_text()


def test_the_images_are_asked_once_more_when_the_cluster_could_not_be_read() -> None:
    from polycheck.core.config import load_env
    from polycheck.signoff.environment import service_images

    config = load_env("local", Path(__file__).resolve().parents[2] / "envs")
    tries: list[int] = []

    class Cluster:
        def workload(self, kind: str, name: str) -> dict[str, Any]:
            return {"spec": {"template": {"spec": {"containers": [{"image": f"registry/{name}:1.3.0"}]}}}}

        def close(self) -> None:
            pass

    def connect() -> Cluster:
        tries.append(1)
        if len(tries) == 1:
            raise RuntimeError("connection reset while loading the kubeconfig")
        return Cluster()

    images = service_images(config, connect)
    assert len(tries) == 2 and images["order"] == "registry/order-service:1.3.0", images

    def never() -> Cluster:
        raise RuntimeError("no cluster")

    assert service_images(config, never) == {"*": "(not read: no cluster)"}


def _outcome(name: str, outcome: str, *steps: str) -> CheckOutcome:
    return CheckOutcome(f"suites/x.py::{name}", outcome, reason=f"Skipped: why {name}" if outcome == "skipped" else "",
                        steps=tuple(steps))


def test_a_step_whose_checks_all_skipped_is_not_run_and_the_run_is_not_go() -> None:
    from polycheck.pytest_plugin.verdicts import NotRunPolicy, RunVerdict

    judge = RunVerdict(NotRunPolicy())
    judge.checks = {c.nodeid: c for c in (_outcome("smoke_a", "passed", "smoke"),
                                          _outcome("canary_a", "skipped", "canary"))}
    judge.counts["passed"] = 1
    (missing,) = judge.not_run()
    assert missing.step == "canary" and not missing.excuse and judge.verdict == "INCONCLUSIVE"
    assert "1 check(s) skipped, e.g. canary_a: Skipped: why canary_a" in missing.line()
    judge.policy = NotRunPolicy(frozenset({"canary"}))
    assert judge.verdict == "GO" and judge.not_run()[0].excuse  # --allow-not-run canary
    judge.policy = NotRunPolicy(local=True)
    assert judge.verdict == "INCONCLUSIVE", "the local stack does not excuse a canary with nothing to judge"
    judge.checks["suites/x.py::canary_b"] = _outcome("canary_b", "passed", "canary")
    judge.policy = NotRunPolicy()
    assert judge.not_run() == [] and judge.verdict == "GO"  # one canary check judged: the step ran


def test_one_skipped_pre_deploy_gate_leaves_its_step_not_run() -> None:
    """Each gate is a runbook rule of its own: a PR-approval gate skipped for want of a token is not a GO."""
    checks = [_outcome("windows", "passed", "predeploy"), _outcome("pr_approved", "skipped", "predeploy")]
    (missing,) = not_run_steps(checks)
    assert missing.step == "predeploy" and missing.skipped == ("pr_approved: Skipped: why pr_approved",)
    assert not_run_steps(checks, local=True)[0].excuse == "the local stack"
    smoke = [_outcome("login", "passed", "smoke"), _outcome("browser", "skipped", "smoke")]
    assert not_run_steps(smoke) == [], "a smoke step with one check that ran did run"


def test_the_signoff_names_not_run_steps_and_flaky_checks() -> None:
    checks = [_outcome("login", "passed", "smoke"), CheckOutcome("suites/x.py::search", "flaky", reason="passed on attempt 2; "
                                                                 "first failure: 503", steps=("smoke",)),
              _outcome("p99", "skipped", "postdeploy")]
    signoff = SignOff(verdict="INCONCLUSIVE", exit_code=6, env="prod", release="1.3.0", run_id="r", run_folder="f",
                      started=0.0, finished=1.0, executor={}, checks=checks, not_run=not_run_steps(checks))
    lines = "\n".join(signoff.summary_lines())
    assert lines.startswith("INCONCLUSIVE with 1 flaky check: env prod"), lines
    assert "Section 6 post-deploy validation   NOT RUN" in lines and "FLAKY        suites/x.py::search: passed on attempt 2" in lines
    data = signoff.to_json()
    assert {s["key"]: s["verdict"] for s in data["steps"]}["postdeploy"] == "NOT RUN"
    assert data["flaky"] == [{"check": "suites/x.py::search", "first_failure": "passed on attempt 2; first failure: 503"}]
    assert "## Steps not run" in signoff.to_markdown() and "## Flaky checks" in signoff.to_markdown()
