"""Issue #18 item 5: the terminal says a shared reason once (grouping, the cut-off's pointer to the sign-off), and a
run-level escalation names the run, never an empty service."""

from __future__ import annotations

import re
from pathlib import Path

from polycheck.core.config import load_env
from polycheck.pytest_plugin.cut_off import SAID_IN_THE_SIGNOFF, header_line, pointing_to_signoff
from polycheck.rollback.engine import RollbackEngine, escalation_subject
from polycheck.signoff.grouping import LISTED_ONE_BY_ONE, ReasonGroup, capped_lines, group_by_reason
from polycheck.signoff.summary import CheckOutcome, SignOff
from tests.unit.test_rollback_actions import ENV

CUT_OFF = "neither the gateway nor any of the 7 services could be reached from this runner (refused): not the release"


def inconclusive(count: int, reason: str = f"inconclusive: {CUT_OFF}") -> list[tuple[str, str, str, str]]:
    return [("inconclusive", f"suites/test_x.py::test_{index}", "", reason) for index in range(count)]


def test_checks_that_share_a_reason_are_one_line_with_their_count() -> None:
    (group,) = group_by_reason(inconclusive(150))
    assert group.shared and len(group.checks) == 150
    assert group.lines() == [f"INCONCLUSIVE 150 checks: inconclusive: {CUT_OFF}"]


def test_distinct_reasons_keep_their_own_lines_in_the_order_they_came() -> None:
    problems = [("failed", "suites/a.py::test_pay", "payment", "POST /payments answered 500"),
                *inconclusive(3),
                ("failed", "suites/a.py::test_order", "order", "POST /orders answered 500"),
                ("failed", "suites/a.py::test_refund", "payment", "POST /payments answered 500")]
    groups = group_by_reason(problems)
    assert [(g.outcome, g.culprit, len(g.checks)) for g in groups] == [("failed", "payment", 2), ("inconclusive", "", 3),
                                                                       ("failed", "order", 1)]
    lines = [line for g in groups for line in g.lines()]
    assert lines[:2] == ["FAILED       suites/a.py::test_pay [culprit: payment]: POST /payments answered 500",
                         "FAILED       suites/a.py::test_refund [culprit: payment]: POST /payments answered 500"]
    assert lines[2].startswith("INCONCLUSIVE 3 checks: ") and "[culprit: order]" in lines[3]


def test_a_few_checks_sharing_a_reason_are_still_named_and_the_same_reason_of_another_culprit_is_apart() -> None:
    few = group_by_reason(inconclusive(LISTED_ONE_BY_ONE))
    assert len(few) == 1 and not few[0].shared and len(few[0].lines()) == LISTED_ONE_BY_ONE
    apart = group_by_reason([("failed", "a", "order", "500"), ("failed", "b", "payment", "500"), ("failed", "c", "order", "500")])
    assert [(g.culprit, g.checks) for g in apart] == [("order", ("a", "c")), ("payment", ("b",))]


def test_reasons_are_cut_as_before_for_a_check_and_say_more_when_shared() -> None:
    long = "x" * 900
    assert len(ReasonGroup("failed", "", long, ("a",)).lines(check_chars=200)[0].split(": ", 1)[1]) == 200
    assert len(ReasonGroup("failed", "", long, ("a", "b", "c")).lines(shared_chars=500)[0].split(": ", 1)[1]) == 500


def test_capped_lines_say_how_many_checks_they_left_unnamed() -> None:
    groups = group_by_reason([*inconclusive(100), *[("failed", f"f{i}", "", f"reason {i}") for i in range(12)]])
    lines, unnamed = capped_lines(groups, 10)
    assert len(lines) == 10 and lines[0].startswith("INCONCLUSIVE 100 checks") and unnamed == 3  # f9, f10, f11
    assert capped_lines(groups, 20) == ([line for g in groups for line in g.lines()], 0)


def test_the_signoff_of_a_run_that_reached_nothing_says_its_reason_once() -> None:
    checks = [CheckOutcome(f"suites/test_x.py::test_{i}", "inconclusive", reason=f"inconclusive: {CUT_OFF}", steps=("smoke",))
              for i in range(150)]
    checks.append(CheckOutcome("suites/test_y.py::test_gate", "failed", "order", "deploy window closed", ("predeploy",)))
    signoff = SignOff(verdict="NO-GO", exit_code=1, env="staging", release="", run_id="r", run_folder="f",
                      started=0.0, finished=1.0, executor={}, checks=checks)
    text = "\n".join(signoff.summary_lines())
    assert text.count(CUT_OFF) == 1 and "INCONCLUSIVE 150 checks: " in text, text
    assert "FAILED       suites/test_y.py::test_gate [culprit: order]: deploy window closed" in text
    assert "more (signoff.md)" not in text
    markdown = signoff.to_markdown()
    assert all(f"`{c.nodeid}`" in markdown for c in checks), "signoff.md names every check"


def test_the_cut_off_reason_points_to_the_signoff_elsewhere() -> None:
    line = f"could not judge release 1.3.0 in env staging: inconclusive: {CUT_OFF} — escalation webhook #1: refused"
    assert pointing_to_signoff(line, CUT_OFF) == (f"could not judge release 1.3.0 in env staging: inconclusive: "
                                                  f"{SAID_IN_THE_SIGNOFF} — escalation webhook #1: refused")
    assert pointing_to_signoff(line, None) == line
    assert "staging" in header_line("staging") and CUT_OFF not in header_line("staging")


def test_a_run_level_escalation_names_the_run_and_is_sent_once(tmp_path: Path) -> None:
    assert escalation_subject("order", "prod") == "order" and escalation_subject("", "prod") == "the run in env prod"
    (tmp_path / "test.toml").write_text(ENV + '[escalation]\nwebhooks = ["${ONCALL_HOOK}", "${SRE_LEAD_HOOK}"]\n')
    said: list[str] = []
    engine = RollbackEngine(config=load_env("test", tmp_path, environ={}), mode="auto", run_id="r", release="",
                            audit_path=tmp_path / "audit.jsonl", kube_factory=lambda: None,  # type: ignore[arg-type, return-value]
                            notify=lambda line, bad: said.append(line))
    engine.on_inconclusive("suites/a.py::test_one", f"inconclusive: {CUT_OFF}")
    engine.on_inconclusive("suites/a.py::test_two", f"inconclusive: {CUT_OFF}")  # the same run: no second escalation
    assert not [line for line in said if re.search(r"\bfor\s*:|\(\s*\)", line)], said
    assert [line.split(":", 1)[0] for line in said] == ["ESCALATION (the run in env test)",
                                                        "ESCALATION FAILED for the run in env test",
                                                        "ESCALATION FAILED for the run in env test"], said
    assert [(r["step"], r["service"], r["check"]) for r in engine.records] == [("escalation", "", "suites/a.py::test_one")] * 2
    assert not engine.fired
