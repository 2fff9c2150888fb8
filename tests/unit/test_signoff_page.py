"""The sign-off page and what the Allure results tell a release manager: categories Allure 3 accepts, blocker only
for this run's rollback triggers, real times for checks that ran ahead, decisions as steps of their check, and a
history kept per environment and selection."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from polycheck.signoff.page import culprits, problem_groups, render
from polycheck.signoff.results import CATEGORIES, JUDGES_LABEL, NODEID_LABEL, RAN_LABEL, finalise_results
from polycheck.signoff.runs import create_run_folder, previous_finished
from polycheck.signoff.summary import CheckOutcome, SignOff


class _Text(HTMLParser):
    """The text a browser shows (no markup), in order, and whether any script or remote resource is referenced."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []
        self.scripts = 0
        self.remote: list[str] = []
        self._skip = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.scripts += tag == "script"
        self._skip = tag in ("style", "title")
        for name, value in attrs:
            if name in ("src", "href") and value and re.match(r"^[a-z]+://", value):
                self.remote.append(value)

    def handle_endtag(self, tag: str) -> None:
        self._skip = False

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.chunks.append(data.strip())


def shown(page: str) -> _Text:
    parser = _Text()
    parser.feed(page)
    return parser


def _signoff(verdict: str, checks: list[CheckOutcome], **extra: Any) -> dict[str, Any]:
    return SignOff(verdict=verdict, exit_code={"GO": 0, "NO-GO": 1, "INCONCLUSIVE": 6}[verdict], env="prod", release="1.4.0",
                   run_id="r1", run_folder="reports/runs/x", started=0, finished=3,
                   executor={"who": "rm", "host": "ci-1", "type": "local"}, checks=checks, **extra).to_json()


# -- the page ------------------------------------------------------------------------------------------------
def test_a_no_go_page_opens_on_the_verdict_then_steps_culprits_decisions_and_the_signature_line() -> None:
    data = _signoff("NO-GO", [
        CheckOutcome("suites/test_order_flow.py::test_payment_is_captured", "failed", "payment", "payment declined <script>", ("smoke",)),
        CheckOutcome("suites/test_health.py::test_health_reports_ok[auth]", "passed", steps=("smoke", "synthetic"))],
        rollbacks=[{"service": "payment", "step": "decision", "outcome": "auto", "time": "t1", "detail": "roll back payment"},
                   {"service": "payment", "step": "kubernetes-undo", "outcome": "done", "time": "t2", "detail": "revision 7"}],
        escalations=[{"service": "payment", "step": "escalation", "outcome": "done", "time": "t3", "detail": "sent to on-call"}])
    text = shown(render(data, allure_href="allure.html"))
    words = " | ".join(text.chunks)
    assert text.chunks[0] == "NO-GO", text.chunks[:3]
    order = [words.index(s) for s in ("NO-GO", "Runbook steps", "Step 4 smoke tests", "Culprits", "payment",
                                      "Rollbacks and escalations", "kubernetes-undo", "Signed off by", "Detail (Allure)")]
    assert order == sorted(order), words
    assert "payment declined <script>" in words and text.scripts == 0 and not text.remote, (text.scripts, text.remote)
    assert "revision 7" in words and "sent to on-call" in words and "Run by | rm" in words


def test_a_go_page_says_go_and_a_flaky_go_names_its_flaky_checks() -> None:
    text = shown(render(_signoff("GO", [CheckOutcome("suites/test_search.py::test_search_finds", "flaky", reason="timeout once",
                                                     steps=("smoke",))])))
    assert text.chunks[0] == "GO with 1 flaky check" and "timeout once" in text.chunks, text.chunks
    assert "None: no failed check blames a service." in text.chunks and "polycheck report" in " ".join(text.chunks)


def test_an_inconclusive_page_gives_its_reason_once_for_a_hundred_checks() -> None:
    reason = "inconclusive: nothing of env prod is reachable (connect refused)"
    checks = [CheckOutcome(f"suites/test_health.py::test_health_reports_ok[s{i}]", "inconclusive", reason=reason, steps=("smoke",))
              for i in range(100)]
    page = render(_signoff("INCONCLUSIVE", checks))
    text = shown(page)
    assert text.chunks[0] == "INCONCLUSIVE" and f"reason: {reason}" in text.chunks, text.chunks[:6]
    assert page.count(reason) == 2, "the reason: once in the header, once for its group of checks"
    assert "100 checks" in text.chunks
    groups = problem_groups(data_problems := _signoff("INCONCLUSIVE", checks)["problems"])
    assert len(groups) == 1 and len(groups[0].checks) == 100 and culprits(data_problems) == {}


def test_the_run_writes_its_page_beside_signoff_json(tmp_path: Path) -> None:
    signoff = SignOff(verdict="GO", exit_code=0, env="local", release="1.3.0", run_id="r", run_folder="x", started=0, finished=1,
                      executor={}, checks=[CheckOutcome("a::b", "passed", steps=("smoke",))])
    signoff.write(tmp_path)
    assert shown((tmp_path / "signoff.html").read_text()).chunks[0] == "GO"


# -- Allure results ---------------------------------------------------------------------------------------------
def test_every_category_pattern_is_valid_for_allure_3_and_sorts_the_verdicts() -> None:
    assert all("(?" not in str(c.get("messageRegex", "")) for c in CATEGORIES), CATEGORIES

    def category(status: str, message: str) -> str:  # as Allure 3 matches: RegExp(pattern, "s").test(message), first wins
        for c in CATEGORIES:
            if status in c["matchedStatuses"] and not c.get("flaky") and (
                    "messageRegex" not in c or re.search(c["messageRegex"], message, re.S)):
                return str(c["name"])
        return ""
    assert category("broken", "blocked by auth: login refused\nmore") == "Blocked by a dependency"
    assert category("broken", "inconclusive: Prometheus unreachable") == "Checker infrastructure / inconclusive"
    assert category("failed", "search runs version '1.2.9'") == "Release defect"
    assert category("broken", "KeyError: 'x' (inconclusive later)") == "Checker error (not judged)"
    node = shutil.which("node")
    if node is not None:  # the JavaScript engine Allure 3 runs, where the machine has it
        script = "const c=" + json.dumps(CATEGORIES) + ";for(const x of c){if(x.messageRegex){new RegExp(x.messageRegex,'s')}}"
        done = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr


def _result(folder: Path, uid: str, nodeid: str, *, severity: str = "blocker", judges: str | None = None,
            ran: str | None = None, status: str = "passed") -> None:
    labels = [{"name": "severity", "value": severity}, {"name": NODEID_LABEL, "value": nodeid}]
    if judges is not None:
        labels.append({"name": JUDGES_LABEL, "value": judges})
    if ran is not None:
        labels.append({"name": RAN_LABEL, "value": ran})
    (folder / f"{uid}-result.json").write_text(json.dumps({
        "uuid": uid, "name": nodeid.rsplit("::", 1)[-1], "fullName": "suites.x#" + nodeid.rsplit("::", 1)[-1], "status": status,
        "start": 5000, "stop": 5000, "statusDetails": {}, "labels": labels, "parameters": []}))


def _loaded(folder: Path) -> dict[str, dict[str, Any]]:
    return {p.name.split("-")[0]: json.loads(p.read_text()) for p in folder.glob("*-result.json")}


def _severity(result: dict[str, Any]) -> str:
    return next(label["value"] for label in result["labels"] if label["name"] == "severity")


def test_blocker_only_for_a_check_whose_failure_could_roll_back_a_service_of_this_release(tmp_path: Path) -> None:
    _result(tmp_path, "pay", "suites/t.py::test_pay", judges="payment")
    _result(tmp_path, "auth", "suites/t.py::test_login", judges="auth")
    _result(tmp_path, "flow", "suites/t.py::test_flow", judges="order,payment")
    _result(tmp_path, "plain", "suites/t.py::test_other", severity="critical")
    finalise_results(tmp_path, environment={}, executor={}, rolls_back=lambda service: service == "payment")
    loaded = _loaded(tmp_path)
    assert {k: _severity(v) for k, v in loaded.items()} == {"pay": "blocker", "auth": "critical", "flow": "blocker", "plain": "critical"}
    assert not any(label["name"].startswith("polycheck.") for r in loaded.values() for label in r["labels"]), "own labels removed"
    probe = tmp_path / "probe"
    probe.mkdir()
    _result(probe, "pay", "suites/t.py::test_pay", judges="payment")
    finalise_results(probe, environment={}, executor={}, rolls_back=lambda service: False)  # a probe never rolls back
    assert _severity(_loaded(probe)["pay"]) == "critical"


def test_a_check_that_ran_ahead_keeps_the_time_its_body_ran(tmp_path: Path) -> None:
    _result(tmp_path, "ahead", "suites/t.py::test_ahead", ran="1200-4700")
    _result(tmp_path, "turn", "suites/t.py::test_turn")
    finalise_results(tmp_path, environment={}, executor={})
    loaded = _loaded(tmp_path)
    assert (loaded["ahead"]["start"], loaded["ahead"]["stop"]) == (1200, 4700)
    assert (loaded["turn"]["start"], loaded["turn"]["stop"]) == (5000, 5000)


def test_rollbacks_and_escalations_are_steps_of_the_check_that_caused_them_not_test_cases(tmp_path: Path) -> None:
    _result(tmp_path, "pay", "suites/t.py::test_pay", judges="payment", status="failed")
    _result(tmp_path, "ok", "suites/t.py::test_ok", judges="auth")
    records = [{"service": "payment", "check": "suites/t.py::test_pay", "step": "decision", "outcome": "auto", "detail": "roll back"},
               {"service": "payment", "check": "suites/t.py::test_pay", "step": "kubernetes-undo", "outcome": "failed", "detail": "403"},
               {"service": "payment", "check": "suites/t.py::test_pay", "step": "escalation", "outcome": "done", "detail": "sent"}]
    count = finalise_results(tmp_path, environment={}, executor={}, records=records)
    loaded = _loaded(tmp_path)
    assert count == 2 and set(loaded) == {"pay", "ok"}, "no result of its own for a rollback"
    steps = loaded["pay"]["steps"]
    assert [s["name"] for s in steps] == ["rollback decision for payment"] and steps[0]["status"] == "failed", steps
    assert [s["name"].split(":")[0] for s in steps[0]["steps"]] == ["decision", "kubernetes-undo", "escalation"]
    attached = json.loads((tmp_path / steps[0]["attachments"][0]["source"]).read_text())
    assert attached == records and "steps" not in loaded["ok"]


def test_history_follows_the_previous_run_of_the_same_env_and_selection(tmp_path: Path) -> None:
    def finished(index: int, env: str, selection: str) -> Path:
        folder = create_run_folder(tmp_path, f"r{index}", 1_700_000_000 + index)
        (folder / "signoff.json").write_text(json.dumps({"env": env, "selection": selection}))
        return folder
    smoke_prod = finished(1, "prod", "-m smoke")
    finished(2, "staging", "-m smoke")
    finished(3, "prod", "-m synthetic")
    current = create_run_folder(tmp_path, "r4", 1_700_000_004)
    assert previous_finished(tmp_path, current, {"env": "prod", "selection": "-m smoke"}) == smoke_prod
    assert previous_finished(tmp_path, current, {"env": "local", "selection": "-m smoke"}) is None
