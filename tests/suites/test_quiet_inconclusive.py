"""Issue #18 item 5: a run that reaches nothing says why once, then its runbook steps, not one line per check; its
one escalation names the run. The files keep every check's detail (signoff.md, signoff.json, JUnit)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support.suite_runner import REPO, run_suites

EXIT_INCONCLUSIVE = 6
CUT_OFF_REASON = "neither the gateway nor any of the 7 services could be reached from this runner"
# Measured on `-m smoke --env staging` from this runner: 206 lines, 65,961 bytes, 172 lines mentioning
# "inconclusive" before the fix; 47 lines, 4,827 bytes, 14 such lines (4 of them the step lines) after it; this
# test's runs (its temporary paths, refused webhooks) print about 4,300 bytes.
MAX_OUTPUT_BYTES = 8_000
# beyond the step lines: the header, the escalation notice and its audit record per webhook, the verdict's two
# lines, pytest's summary, the sign-off's headline, its one line for the 150 checks and its "decided by"
MAX_INCONCLUSIVE_LINES_BEYOND_STEPS = 12
# Each escalation webhook refuses the connection: the escalation is attempted (and fails), and nothing is ever posted
# to a real on-call, whatever the machine's environment holds.
WEBHOOKS = {"POLYSHOP_ONCALL_WEBHOOK": "http://127.0.0.1:9/oncall", "POLYSHOP_SRE_LEAD_WEBHOOK": "http://127.0.0.1:9/sre-lead"}


def staging_cut_off(folder: Path, how: str) -> Path:
    """envs/staging.toml, its every host made unreachable by construction (so a runner inside the cluster cannot
    reach the real staging): `unresolvable` (RFC 6761 .invalid names) or `refused` (the discard port of 127.0.0.1)."""
    text = (REPO / "envs" / "staging.toml").read_text()
    if how == "unresolvable":
        text = text.replace(".svc.cluster.local", ".invalid")
    else:
        text = re.sub(r"http://[a-z-]+\.polyshop\.svc\.cluster\.local:8080", "http://127.0.0.1:9", text)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "staging.toml").write_text(text)
    return folder


@pytest.mark.parametrize("how", ["unresolvable", "refused"])
def test_a_run_that_reaches_nothing_says_why_once_and_escalates_once_naming_the_run(tmp_path: Path, how: str) -> None:
    """`-m smoke --env staging` from a runner cut off from staging: exit 6, the reason once, a line per runbook step."""
    envs, reports, log = staging_cut_off(tmp_path / "envs", how), tmp_path / "reports", tmp_path / "rollback-log.jsonl"
    run = run_suites("-m", "smoke", "--env", "staging", f"--env-dir={envs}", f"--rollback-log={log}",
                     f"--ledger={tmp_path / 'ledger.jsonl'}", reports_dir=reports, extra_env=WEBHOOKS)
    assert run.returncode == EXIT_INCONCLUSIVE, run.describe()
    output, lines = run.output, run.output.splitlines()
    signoff = json.loads((reports / "latest" / "signoff.json").read_text())
    assert signoff["verdict"] == "INCONCLUSIVE", signoff["verdict"]

    assert output.count(CUT_OFF_REASON) == 1, [line[:160] for line in lines if CUT_OFF_REASON in line]
    covered_steps = [s for s in signoff["steps"] if s["verdict"] != "not selected"]
    assert len(covered_steps) >= 4, covered_steps
    mentions = [line for line in lines if "inconclusive" in line.lower()]
    assert len(mentions) <= len(covered_steps) + MAX_INCONCLUSIVE_LINES_BEYOND_STEPS, "\n".join(m[:160] for m in mentions)
    assert len(output.encode()) < MAX_OUTPUT_BYTES, (len(output.encode()), len(lines))
    for step in covered_steps:  # the sign-off's step lines
        assert any(step["title"] in line and "INCONCLUSIVE" in line for line in lines), step

    unnamed = [line for line in lines if re.search(r"\bfor\s*:|ESCALATION\s*(\(\s*\))?\s*:|^\s*escalation\s", line)]
    assert not unnamed, unnamed
    notices = [line for line in lines if line.startswith("polycheck: ESCALATION (")]
    assert len(notices) == 1 and "the run" in notices[0] and "env staging" in notices[0], notices
    assert sum(line.startswith("polycheck: ESCALATION FAILED for the run in env staging: ") for line in lines) == len(WEBHOOKS), lines

    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert not [r for r in records if r["step"] != "escalation"], records  # no rollback decided, none held
    escalations = {(r["service"], r["check"], r["detail"].split(" — escalation webhook")[0]) for r in records}
    assert len(escalations) == 1 and len(records) == len(WEBHOOKS), records  # one escalation, one record per webhook
    assert CUT_OFF_REASON in records[0]["detail"], records[0]

    # the files keep every check's detail
    inconclusive = {name for name, case in run.cases.items() if case.outcome == "inconclusive"}
    assert inconclusive and inconclusive == set(run.cases), run.describe()
    assert all(CUT_OFF_REASON in run.cases[name].message for name in inconclusive), run.describe()
    assert len(signoff["problems"]) == len(run.cases) and all(CUT_OFF_REASON in p["reason"] for p in signoff["problems"])
    markdown = (reports / "latest" / "signoff.md").read_text()
    assert all(f"`{p['check']}`" in markdown for p in signoff["problems"]), "signoff.md lost a check"
