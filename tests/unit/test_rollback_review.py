"""Was each rollback right: pending decisions, how a later outcome judges them, the tally, and one review each."""

from __future__ import annotations

import json
from pathlib import Path

from polycheck.rollback.review import pending, precision_line, read_records, review, tally


def _decision(run: str, check: str, mode: str, env: str = "prod", rule: str = "purpose deploy: in this release") -> dict[str, str]:
    return {"run_id": run, "env": env, "step": "decision", "outcome": mode, "service": "order", "check": check, "rule": rule}


def test_an_acted_rollback_is_confirmed_when_the_check_passes_and_refuted_when_it_still_fails(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    decided = [_decision("r1", check, "auto") for check in ("a::fixed", "a::not_the_release", "a::skipped_now", "a::undo_failed")]
    acted = [{**d, "step": "kubernetes-undo", "outcome": "done"} for d in decided[:3]]
    acted.append({**decided[3], "step": "kubernetes-undo", "outcome": "failed"})  # nothing was restored
    log.write_text("".join(json.dumps(r) + "\n" for r in [*decided, *acted, {
        "run_id": "r1", "env": "prod", "step": "decision", "outcome": "off", "check": "a::off", "service": "order"}]) + "not json\n")
    written = review(log, env="prod", run_id="r2", outcomes={"a::fixed": "passed", "a::not_the_release": "failed",
                                                             "a::skipped_now": "skipped", "a::off": "failed",
                                                             "a::undo_failed": "failed"})
    assert {(r["check"], r["outcome"]) for r in written} == {("a::fixed", "confirmed"), ("a::not_the_release", "refuted")}, \
        "a rollback whose undo failed restored nothing: it is neither confirmed nor refuted"
    assert [d.check for d in pending(read_records(log), "prod", "r3")] == ["a::skipped_now"], "reviewed once; a skip waits"
    assert review(log, env="prod", run_id="r3", outcomes={"a::fixed": "failed"}) == [], "never reviewed twice"


def test_a_shadow_decision_is_confirmed_when_the_failure_lasts_and_refuted_when_it_passes_alone(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    log.write_text(json.dumps(_decision("r1", "a::lasting", "shadow")) + "\n" + json.dumps(_decision("r1", "a::gone", "shadow")) + "\n")
    written = review(log, env="prod", run_id="r2", outcomes={"a::lasting": "failed", "a::gone": "flaky"})
    assert {(r["check"], r["outcome"]) for r in written} == {("a::lasting", "confirmed"), ("a::gone", "refuted")}


def test_decisions_of_another_env_or_of_this_run_are_not_reviewed_and_the_tally_counts_each_once(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    records = [_decision("r1", "a::x", "auto", env="staging"), _decision("r2", "a::x", "auto"),
               _decision("r2", "a::x", "auto"),  # the same decision written twice counts once
               {**_decision("r2", "a::x", "auto"), "step": "argo-abort", "outcome": "done"},
               {**_decision("r1", "a::x", "auto", env="staging"), "step": "argo-abort", "outcome": "done"}]
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert review(log, env="prod", run_id="r2", outcomes={"a::x": "passed"}) == []
    review(log, env="prod", run_id="r3", outcomes={"a::x": "passed"})
    records = read_records(log)
    assert tally(records, "prod", "check") == {"a::x": {"decided": 1, "confirmed": 1, "refuted": 0, "pending": 0}}
    assert tally(records, "staging", "rule") == {"purpose deploy: in this release": {"decided": 1, "confirmed": 0, "refuted": 0,
                                                                                     "pending": 1}}
    assert precision_line(records, "prod", ["a::x"]) == ["a::x: 1 confirmed, 0 refuted, 0 pending of 1 earlier decisions"]
