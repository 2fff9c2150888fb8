"""The sign-off of one run: GO / NO-GO / INCONCLUSIVE, each runbook step's verdict, every check that did not pass
with its reason and culprit, the rollbacks and escalations, and who ran it where, when, for how long.

Written as `signoff.json` (for machines), `signoff.md` and `signoff.html` (the sign-off page, for the release
manager); the terminal ends with the same lines as the top of `signoff.md`.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, UTC
from pathlib import Path
from typing import Any

from polycheck.core.redact import redact_secrets
from polycheck.core.steps import STEPS
from polycheck.signoff.grouping import capped_lines, group_by_reason

EXIT_CODES = {"GO": 0, "NO-GO": 1, "INCONCLUSIVE": 6}
NOT_GOOD = ("failed", "blocked", "inconclusive")


@dataclass
class CheckOutcome:
    nodeid: str
    outcome: str  # passed | flaky | failed | blocked | inconclusive | skipped
    culprit: str = ""
    reason: str = ""
    steps: tuple[str, ...] = ()
    links: list[tuple[str, str]] = field(default_factory=list)


def step_verdict(counts: Counter[str]) -> str:
    if counts["failed"] or counts["blocked"]:
        return "NO-GO"
    if counts["inconclusive"]:
        return "INCONCLUSIVE"
    if counts["passed"] or counts["flaky"]:
        return "GO"
    return "NOT RUN"


@dataclass(frozen=True)
class NotRun:
    """A runbook step the selection covers whose checks did not run (all skipped; for a step of gates, any)."""

    step: str
    title: str
    skipped: tuple[str, ...]  # "check: why it skipped"
    excuse: str = ""  # why it does not make the run INCONCLUSIVE; "" when it does

    def line(self) -> str:
        why = f"allowed: {self.excuse}" if self.excuse else "the run is INCONCLUSIVE (--allow-not-run STEP accepts it)"
        first = self.skipped[0] if self.skipped else ""
        more = f" (+{len(self.skipped) - 1} more)" if len(self.skipped) > 1 else ""
        return f"NOT RUN      {self.title}: {len(self.skipped)} check(s) skipped, e.g. {first[:200]}{more}; {why}"


def not_run_steps(checks: list[CheckOutcome], *, allowed: frozenset[str] = frozenset(), local: bool = False) -> list[NotRun]:
    """The steps the selection covers that did not run. On the local stack a step is excused (its real parts, a
    browser or Prometheus, may be absent), except the canary analysis: with nothing to judge it never promotes."""
    found = []
    for step in STEPS:
        covered = [c for c in checks if step.key in c.steps]
        skipped = [c for c in covered if c.outcome == "skipped"]
        if not skipped or (len(skipped) < len(covered) and not step.every_check):
            continue
        excuse = ("listed in --allow-not-run / environment.allow_not_run" if step.key in allowed
                  else "the local stack" if local and step.key != "canary" else "")
        found.append(NotRun(step.key, step.title, tuple(f"{c.nodeid.rsplit('::', 1)[-1]}: {c.reason}" for c in skipped), excuse))
    return found


def describe_counts(counts: Counter[str] | dict[str, int]) -> str:
    order = ("failed", "blocked", "inconclusive", "flaky", "passed", "skipped")
    return ", ".join(f"{counts[k]} {k}" for k in order if counts.get(k)) or "no check"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


@dataclass
class SignOff:
    verdict: str
    exit_code: int
    env: str
    release: str
    run_id: str
    run_folder: str
    started: float
    finished: float
    executor: dict[str, Any]
    checks: list[CheckOutcome]
    rollbacks: list[dict[str, Any]] = field(default_factory=list)  # audit records of this run (decisions, actions)
    escalations: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""  # why the verdict is what it is when no check decided it (usage error, interrupted, nothing ran)
    command: str = ""
    environment: dict[str, str] = field(default_factory=dict)
    allure_results: str = ""  # where this run's Allure results are (its folder's, unless --alluredir said otherwise)
    not_run: list[NotRun] = field(default_factory=list)  # the covered steps that did not run
    selection: str = ""  # what the run selected (-m, -k, paths): history and trend are per env and selection
    reviews: list[dict[str, Any]] = field(default_factory=list)  # earlier runs' rollback decisions this run confirmed or refuted
    precision: list[str] = field(default_factory=list)  # the review tally of each check that decided in this run

    def step_verdict_of(self, key: str, counts: Counter[str]) -> str:
        """A step's verdict; NOT RUN when its checks did not run (allowed: "NOT RUN (allowed)")."""
        if not sum(counts.values()):
            return "not selected"
        verdict = step_verdict(counts)
        missing = next((n for n in self.not_run if n.step == key), None)
        if missing is not None and verdict in ("GO", "NOT RUN"):
            return "NOT RUN (allowed)" if missing.excuse else "NOT RUN"
        return verdict

    def flaky(self) -> list[CheckOutcome]:
        return sorted((c for c in self.checks if c.outcome == "flaky"), key=lambda c: c.nodeid)

    # -- derived -------------------------------------------------------------------------------------
    @property
    def counts(self) -> Counter[str]:
        return Counter(check.outcome for check in self.checks)

    def step_counts(self) -> list[tuple[str, str, Counter[str]]]:
        """(key, title, counts) of every runbook step, those no check of the run belongs to included."""
        out = []
        for step in STEPS:
            counts = Counter(c.outcome for c in self.checks if step.key in c.steps)
            out.append((step.key, step.title, counts))
        return out

    @property
    def seconds(self) -> float:
        return round(max(0.0, self.finished - self.started), 1)

    def problems(self) -> list[CheckOutcome]:
        rank = {k: i for i, k in enumerate(NOT_GOOD)}
        return sorted((c for c in self.checks if c.outcome in NOT_GOOD), key=lambda c: (rank[c.outcome], c.nodeid))

    # -- rendering -----------------------------------------------------------------------------------
    def headline(self) -> str:
        flaky = self.flaky()
        verdict = f"{self.verdict} with {len(flaky)} flaky check{'s' if len(flaky) != 1 else ''}" if flaky else self.verdict
        return (f"{verdict}: env {self.env}, release {self.release or '(unnamed)'}, run {self.run_id}, "
                f"{self.seconds:g} s, exit {self.exit_code}")

    def rollback_line(self) -> str:
        decided: dict[str, list[str]] = {}
        for record in self.rollbacks:
            if record.get("step") == "hold":
                continue  # nothing was done: its rule is on the "decided by" lines
            if record.get("step") == "decision":
                decided.setdefault(record["service"], []).append(f"{record['outcome']}")
            else:
                decided.setdefault(record["service"], []).append(f"{record['step']} {record['outcome']}")
        parts = [f"{service} ({', '.join(steps)})" for service, steps in decided.items()]
        sent = [e for e in self.escalations if e.get("outcome") in ("done", "planned")]
        failed = [e for e in self.escalations if e.get("outcome") == "failed"]
        text = f"rollbacks: {'; '.join(parts) if parts else 'none'}"
        text += f"; escalations: {len(sent)} sent" + (f", {len(failed)} not sent" if failed else "") if self.escalations else "; escalations: none"
        return text

    def summary_lines(self, *, max_checks: int = 10) -> list[str]:
        """The few lines the terminal ends with (and signoff.md starts with): checks that share a reason are one line
        with their count (`polycheck.signoff.grouping`), at most `max_checks` lines of them."""
        lines = [self.headline()]
        lines += [f"  {title:34} {self.step_verdict_of(key, counts):12} {describe_counts(counts)}"
                  for key, title, counts in self.step_counts() if sum(counts.values())]
        lines += [f"  {missing.line()}" for missing in self.not_run]
        lines += [f"  FLAKY        {check.nodeid}: {check.reason[:200]}" for check in self.flaky()[:max_checks]]
        groups = group_by_reason((c.outcome, c.nodeid, c.culprit, c.reason) for c in self.problems())
        shown, unnamed = capped_lines(groups, max_checks)
        lines += [f"  {line}" for line in shown]
        if unnamed:
            lines.append(f"  … and {unnamed} more (signoff.md)")
        if self.note:
            lines.append(f"  note: {self.note}")
        lines.append(f"  {self.rollback_line()}")
        rules = list(dict.fromkeys(str(r["rule"]) for r in self.rollbacks + self.escalations if r.get("rule")))
        lines += [f"  decided by: {rule[:240]}" for rule in rules[:4]]
        lines += [f"  reviewed: run {r.get('reviewed_run')}'s decision on {r.get('service')} {str(r.get('outcome', '')).upper()}: "
                  f"{str(r.get('detail', ''))[:200]}" for r in self.reviews[:max_checks]]
        lines += [f"  earlier decisions of {line[:240]}" for line in self.precision[:max_checks]]
        where = self.executor.get("ci_url") or (self.executor.get("buildName") if self.executor.get("type") != "local" else "")
        lines.append(f"  by {self.executor.get('who', '?')} on {self.executor.get('host', '?')}"
                     + (f", {where}" if where else "") + f"; sign-off: {self.run_folder}/signoff.md")
        return [redact_secrets(line) for line in lines]

    def to_json(self) -> dict[str, Any]:
        data = {
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "env": self.env,
            "release": self.release,
            "run_id": self.run_id,
            "run_folder": self.run_folder,
            "started": _iso(self.started),
            "finished": _iso(self.finished),
            "seconds": self.seconds,
            "who": self.executor.get("who"),
            "host": self.executor.get("host"),
            "ci_url": self.executor.get("ci_url") or None,
            "executor": self.executor,
            "command": self.command,
            "selection": self.selection,
            "counts": dict(sorted(self.counts.items())),
            "steps": [{"key": key, "title": title, "verdict": self.step_verdict_of(key, counts),
                       "counts": dict(sorted(counts.items()))} for key, title, counts in self.step_counts()],
            "not_run": [asdict(missing) for missing in self.not_run],
            "flaky": [{"check": c.nodeid, "first_failure": c.reason} for c in self.flaky()],
            "problems": [{"check": c.nodeid, "outcome": c.outcome, "culprit": c.culprit or None, "reason": c.reason,
                          "links": [{"name": n, "url": u} for n, u in c.links]} for c in self.problems()],
            "rollbacks": self.rollbacks,
            "reviews": self.reviews,
            "precision": self.precision,
            "escalations": self.escalations,
            "note": self.note or None,
            "allure_results": self.allure_results or None,
            "environment": self.environment,
        }
        return json.loads(redact_secrets(json.dumps(data)))

    def to_markdown(self) -> str:
        out = [f"# Release sign-off: {self.verdict}", "", "```", *self.summary_lines(max_checks=5), "```", ""]
        out += ["| | |", "| --- | --- |",
                f"| verdict | **{self.verdict}** (exit code {self.exit_code}) |",
                f"| environment | {self.env} |", f"| release | {self.release or '(unnamed)'} |",
                f"| run | {self.run_id} (`{self.run_folder}`) |",
                f"| who | {self.executor.get('who', '?')} |", f"| where | {self.executor.get('host', '?')}"
                + (f", [{self.executor.get('buildName')}]({self.executor['ci_url']})" if self.executor.get("ci_url")
                   else (f", {self.executor.get('buildName', '')}" if self.executor.get("type") != "local" else "")) + " |",
                f"| when | {_iso(self.started)} → {_iso(self.finished)} ({self.seconds:g} s) |"]
        if self.command:
            out.append(f"| command | `{self.command}` |")
        out += ["", "## Runbook steps", "", "| step | verdict | checks |", "| --- | --- | --- |"]
        out += [f"| {title} | {self.step_verdict_of(key, counts)} | {describe_counts(counts)} |" for key, title, counts in self.step_counts()]
        if self.not_run:
            out += ["", "## Steps not run", ""] + [f"- {_cell(missing.line())}" for missing in self.not_run]
        if self.flaky():
            out += ["", "## Flaky checks (passed only on a rerun)", "", "| check | first failure |", "| --- | --- |"]
            out += [f"| `{c.nodeid}` | {_cell(c.reason)} |" for c in self.flaky()]
        problems = self.problems()
        out += ["", "## Checks that did not pass", ""]
        if not problems:
            out.append("None.")
        else:
            out += ["| outcome | check | culprit | reason | evidence |", "| --- | --- | --- | --- | --- |"]
            for c in problems:
                links = " ".join(f"[{n}]({u})" for n, u in c.links)
                out.append(f"| {c.outcome} | `{c.nodeid}` | {c.culprit or '—'} | {_cell(c.reason)} | {links} |")
        out += ["", "## Rollbacks and escalations", ""]
        records = self.rollbacks + self.escalations
        if not records:
            out.append("None.")
        else:
            out += ["| time | service | step | outcome | detail | rule |", "| --- | --- | --- | --- | --- | --- |"]
            out += [f"| {r.get('time', '')} | {r.get('service') or 'run'} | {r.get('step')} | {r.get('outcome')} | "
                    f"{_cell(str(r.get('detail', '')))} | {_cell(str(r.get('rule') or ''))} |"
                    for r in sorted(records, key=lambda r: r.get("time", ""))]
        if self.environment:
            out += ["", "## Environment", "", "| | |", "| --- | --- |"]
            out += [f"| {k} | {_cell(v)} |" for k, v in self.environment.items()]
        out.append("")
        return redact_secrets("\n".join(out))

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        from polycheck.signoff.page import SIGNOFF_HTML, render

        data = self.to_json()
        (folder / "signoff.md").write_text(self.to_markdown())
        (folder / SIGNOFF_HTML).write_text(render(data))
        temporary = folder / ".signoff.json.tmp"
        temporary.write_text(json.dumps(data, indent=2) + "\n")
        temporary.replace(folder / "signoff.json")  # last: a run with signoff.json is finished


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:300]


def as_dict(check: CheckOutcome) -> dict[str, Any]:
    return asdict(check)
