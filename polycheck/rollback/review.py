"""Was each rollback right? The next run against the same environment reviews the earlier runs' decisions.

Every rollback decision is in the audit log (`step: decision`, outcome `auto`, `shadow` or `dry-run`, naming its
check and its rule). When a later run of the same env runs that check again, it appends one `step: review` record:

- a rollback that acted (`auto`): the check passes on the restored revision -> **confirmed** (the rollback fixed
  it); it still fails -> **refuted** (the release was not the cause);
- a decision that did not act (`shadow`, `dry-run`): the check still fails -> **confirmed** (the failure was real
  and lasting: the rollback was warranted); it passes without one -> **refuted** (a transient failure: the rollback
  would have been needless). This is how `--rollback shadow` measures a gate's precision before it is trusted.

Each decision is reviewed once, by the first later run that ran its check to a verdict (passed or failed); a run
where it was skipped, blocked or inconclusive leaves it pending. `polycheck decisions --env NAME` prints the tally
per check and per rule; the sign-off shows it for the checks that decided in the run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ACTED, NOT_ACTED = ("auto",), ("shadow", "dry-run")
CONFIRMED, REFUTED = "confirmed", "refuted"


@dataclass(frozen=True)
class Decision:
    run_id: str
    env: str
    service: str
    check: str
    mode: str  # auto | shadow | dry-run
    rule: str


def read_records(path: Path) -> list[dict[str, Any]]:
    """The audit log's records (a line that is not JSON is skipped: a run killed mid-write)."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def pending(records: Iterable[dict[str, Any]], env: str, current_run: str) -> list[Decision]:
    """The decisions of earlier runs of `env` that no review has answered yet."""
    records = list(records)
    reviewed = {(r.get("reviewed_run"), r.get("check")) for r in records if r.get("step") == "review"}
    applied = _applied(records)
    found: dict[tuple[str, str], Decision] = {}
    for r in records:
        if r.get("step") != "decision" or r.get("env") != env or r.get("run_id") == current_run:
            continue
        if r.get("outcome") not in ACTED + NOT_ACTED:
            continue
        key = (str(r.get("run_id")), str(r.get("check")))
        if r.get("outcome") in ACTED and (r.get("run_id"), r.get("check")) not in applied:
            continue
        if key not in reviewed and key not in found:
            found[key] = Decision(key[0], env, str(r.get("service")), key[1], str(r.get("outcome")), str(r.get("rule") or ""))
    return list(found.values())


def _applied(records: list[dict[str, Any]]) -> set[tuple[Any, Any]]:
    """(run, check) of every decision one of whose actions was applied. A rollback that acted is judged only then: a
    failed undo restored nothing, so its check still failing would wrongly refute it."""
    return {(r.get("run_id"), r.get("check")) for r in records
            if r.get("step") not in ("decision", "hold", "escalation", "memory", "review") and r.get("outcome") == "done"}


def judged(decision: Decision, outcome_now: str) -> str | None:
    """confirmed / refuted for a decision, given its check's outcome in this run (None: nothing to judge by)."""
    if outcome_now not in ("passed", "flaky", "failed"):
        return None
    passes = outcome_now in ("passed", "flaky")
    if decision.mode in ACTED:
        return CONFIRMED if passes else REFUTED
    return REFUTED if passes else CONFIRMED


def review(audit_log: Path, *, env: str, run_id: str, outcomes: Mapping[str, str]) -> list[dict[str, Any]]:
    """Append a review record for every pending decision whose check this run judged; the records appended."""
    written = []
    for decision in pending(read_records(audit_log), env, run_id):
        verdict = judged(decision, outcomes.get(decision.check, ""))
        if verdict is None:
            continue
        now = outcomes[decision.check]
        meaning = {("auto", CONFIRMED): "passes on the restored revision: the rollback fixed it",
                   ("auto", REFUTED): "still fails after the rollback: the release was not the cause"}.get(
            (decision.mode if decision.mode in ACTED else "", verdict),
            "still fails: the rollback would have been warranted" if verdict == CONFIRMED
            else "passes without a rollback: it would have been needless")
        written.append({"time": datetime.now(UTC).isoformat(), "run_id": run_id, "env": env, "step": "review",
                        "outcome": verdict, "service": decision.service, "check": decision.check,
                        "reviewed_run": decision.run_id, "mode": decision.mode, "rule": decision.rule,
                        "detail": f"{decision.check} {now} in run {run_id}: {meaning}"})
    if written:
        audit_log.parent.mkdir(parents=True, exist_ok=True)
        with audit_log.open("a") as log:
            log.write("".join(json.dumps(r) + "\n" for r in written))
    return written


def tally(records: Iterable[dict[str, Any]], env: str, by: str) -> dict[str, dict[str, int]]:
    """Per check (by="check") or per rule (by="rule"): decided, confirmed, refuted, pending."""
    records = [r for r in records if r.get("env") == env]
    table: dict[str, dict[str, int]] = defaultdict(lambda: {"decided": 0, CONFIRMED: 0, REFUTED: 0, "pending": 0})
    answered: dict[tuple[Any, Any], str] = {}
    for r in records:
        if r.get("step") == "review":
            answered[(r.get("reviewed_run"), r.get("check"))] = str(r.get("outcome"))
    seen: set[tuple[Any, Any]] = set()
    applied = _applied(records)
    for r in records:
        if r.get("step") != "decision" or r.get("outcome") not in ACTED + NOT_ACTED:
            continue
        key = (r.get("run_id"), r.get("check"))
        if r.get("outcome") in ACTED and key not in applied:
            continue  # nothing was restored: not a decision to judge
        if key in seen:
            continue
        seen.add(key)
        row = table[str(r.get(by) or "(no rule)")]
        row["decided"] += 1
        row[answered.get(key, "pending")] += 1
    return dict(table)


def precision_line(records: Iterable[dict[str, Any]], env: str, checks: Iterable[str]) -> list[str]:
    """For the sign-off: the review tally of each check that decided in this run."""
    table = tally(records, env, "check")
    return [f"{check}: {row[CONFIRMED]} confirmed, {row[REFUTED]} refuted, {row['pending']} pending of {row['decided']} "
            "earlier decisions" for check in sorted(set(checks)) if (row := table.get(check))]


def main(argv: list[str]) -> int:
    from polycheck.core import resolve

    parser = argparse.ArgumentParser(prog="polycheck decisions", description=(
        "Print, per check and per rule, how many rollback decisions of an env the next run confirmed (the check passed "
        "on the restored revision, or a shadow decision's failure lasted) and refuted."))
    parser.add_argument("--env", help="the environment (default, as for the plugin: ini polycheck_env, $POLYCHECK_ENV, local)")
    parser.add_argument("--audit-log", help="the audit log (default: ROOT/reports/rollback-log.jsonl, as the plugin's)")
    parser.add_argument("--root", default=".", help="the checkout or team repository whose pytest ini is read (default: .)")
    parser.add_argument("--json", action="store_true", help="print the tallies as JSON")
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    ini = resolve.ini_file(root)
    env = resolve.env_name(args.env, ini)
    log = Path(args.audit_log) if args.audit_log else resolve.reports_dir(None, ini, root) / "rollback-log.jsonl"
    records = read_records(log)
    tables = {by: tally(records, env, by) for by in ("check", "rule")}
    if args.json:
        print(json.dumps({"env": env, "audit_log": str(log), **tables}, indent=2))
        return 0
    if not tables["check"]:
        print(f"polycheck decisions: no rollback decision of env {env} in {log}")
        return 0
    for by, table in tables.items():
        print(f"per {by} (env {env}, {log}):")
        for name, row in sorted(table.items()):
            print(f"  {row['decided']:3} decided  {row[CONFIRMED]:3} confirmed  {row[REFUTED]:3} refuted  "
                  f"{row['pending']:3} pending  {name}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
