"""The sign-off page: one self-contained HTML file a release manager reads and signs, from a run's `signoff.json`.

It opens on the verdict (GO / NO-GO / INCONCLUSIVE, in words and colour), then the runbook steps table of
`signoff.md`, the culprits, the checks that did not pass (grouped by reason, so an unreachable environment is
one line, not one per check), the rollbacks and escalations, who ran it and a line for who signs it off; the
Allure detail comes last (`allure.html`, beside it, when `polycheck report` built it). No script, nothing loaded
from the network: it prints and opens anywhere.
"""

from __future__ import annotations

from collections import defaultdict
from html import escape
from typing import Any

from polycheck.signoff.grouping import ReasonGroup, group_by_reason

SIGNOFF_HTML = "signoff.html"
CLASS = {"GO": "go", "NO-GO": "nogo", "INCONCLUSIVE": "inconclusive"}
MEANING = {
    "GO": "The release may stay: every runbook step this run covered ran checks that passed.",
    "NO-GO": "The release must not stay as it is: a check the runbook enforces failed (see the culprits below).",
    "INCONCLUSIVE": "Nothing was judged: the checker could not measure (see the reason below). Neither GO nor a rollback.",
}
STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1b1f24;background:#fff}
main{max-width:1200px;margin:0 auto;padding:0 24px 40px}
header.verdict{padding:22px 24px;color:#fff}
header.go{background:#1a7f37}header.nogo{background:#b42318}header.inconclusive{background:#9a6700}
header h1{font-size:44px;margin:0 0 6px}header p{margin:4px 0;font-size:16px}
h2{margin:28px 0 8px;font-size:20px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{border:1px solid #d0d7de;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.v-GO{color:#1a7f37;font-weight:600}td.v-NO-GO{color:#b42318;font-weight:600}
td.v-INCONCLUSIVE,td.v-NOT{color:#9a6700;font-weight:600}code{font-size:13px}
.signature{border:2px solid #1b1f24;padding:14px 18px;margin-top:10px}
.signature p{margin:10px 0}.blank{display:inline-block;min-width:260px;border-bottom:1px solid #1b1f24}
iframe{width:100%;height:900px;border:1px solid #d0d7de}
"""
MAX_GROUPS = 60
MAX_RECORDS = 200


def _e(value: Any) -> str:
    return escape(str(value if value is not None else ""))


def _counts(counts: dict[str, int]) -> str:
    order = ("failed", "blocked", "inconclusive", "flaky", "passed", "skipped")
    return ", ".join(f"{counts[k]} {k}" for k in order if counts.get(k)) or "no check"


def _table(head: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    """A table of already-escaped cells."""
    out = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for index, row in enumerate(rows):
        cls = classes[index] if classes else ""
        out.append("<tr>" + "".join(f'<td class="{cls}">{cell}</td>' if i == 1 and cls else f"<td>{cell}</td>"
                                    for i, cell in enumerate(row)) + "</tr>")
    return "\n".join(out) + "</table>"


def problem_groups(problems: list[dict[str, Any]]) -> list[ReasonGroup]:
    """The checks that did not pass, grouped as the terminal groups them (polycheck.signoff.grouping): failed first,
    then blocked, then inconclusive, the largest group first."""
    groups = group_by_reason((str(p.get("outcome")), str(p.get("check")), str(p.get("culprit") or ""),
                              str(p.get("reason") or "")) for p in problems)
    rank = {"failed": 0, "blocked": 1, "inconclusive": 2}
    return sorted(groups, key=lambda g: (rank.get(g.outcome, 3), -len(g.checks), g.culprit, g.reason))


def culprits(problems: list[dict[str, Any]]) -> dict[str, int]:
    """Each service the failed checks blame, with how many checks blame it."""
    found: dict[str, int] = defaultdict(int)
    for problem in problems:
        if problem.get("outcome") == "failed" and problem.get("culprit"):
            found[str(problem["culprit"])] += 1
    return dict(sorted(found.items(), key=lambda kv: (-kv[1], kv[0])))


def render(data: dict[str, Any], *, allure_href: str | None = None) -> str:
    """The page of one run's `signoff.json` data; `allure_href`: the Allure report beside it, if built."""
    verdict = str(data.get("verdict") or "INCONCLUSIVE")
    flaky = data.get("flaky") or []
    title = f"{verdict} with {len(flaky)} flaky check{'s' if len(flaky) != 1 else ''}" if flaky else verdict
    problems = data.get("problems") or []
    parts = [f"<header class=\"verdict {CLASS.get(verdict, 'inconclusive')}\"><h1>{_e(title)}</h1>",
             f"<p><b>{_e(MEANING.get(verdict, ''))}</b></p>",
             f"<p>env <b>{_e(data.get('env'))}</b> · release <b>{_e(data.get('release') or '(unnamed)')}</b> · run "
             f"{_e(data.get('run_id'))} · {_e(data.get('started'))} → {_e(data.get('finished'))} ({_e(data.get('seconds'))} s) · "
             f"exit {_e(data.get('exit_code'))}</p>"]
    if data.get("note"):
        parts.append(f"<p>note: {_e(data['note'])}</p>")
    if verdict == "INCONCLUSIVE" and problems:
        parts.append(f"<p>reason: {_e(problem_groups(problems)[0].reason)}</p>")
    parts.append("</header><main>")
    parts.append(_steps(data))
    parts.append(_culprits(problems))
    parts.append(_problems(problems))
    if data.get("not_run"):
        parts.append("<h2>Steps not run</h2>" + _table(["step", "checks skipped", "why it does not count / what to do"], [
            [_e(n.get("title")), _e(f"{len(n.get('skipped') or [])}: " + "; ".join((n.get("skipped") or [])[:3])),
             _e(f"allowed: {n['excuse']}" if n.get("excuse") else "makes the run INCONCLUSIVE (--allow-not-run STEP accepts it)")]
            for n in data["not_run"]]))
    if flaky:
        parts.append("<h2>Flaky checks (passed only on a rerun)</h2>" + _table(["check", "first failure"], [
            [f"<code>{_e(f.get('check'))}</code>", _e(f.get("first_failure"))] for f in flaky]))
    parts.append(_decisions(data))
    parts.append(_signature(data, verdict))
    parts.append(_environment(data))
    if allure_href:
        parts.append(f'<h2>Detail (Allure)</h2><p><a href="{_e(allure_href)}">Open the Allure report</a> '
                     f"(every check, its steps, HTTP exchanges, timeline, history of this env and selection).</p>"
                     f'<iframe src="{_e(allure_href)}" title="Allure report"></iframe>')
    else:
        parts.append("<h2>Detail (Allure)</h2><p>The Allure report of this run: <code>polycheck report</code> "
                     "(or <code>make report</code>) builds it beside this page.</p>")
    parts.append("</main>")
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(verdict)}: PolyShop release sign-off, {_e(data.get('env'))} {_e(data.get('release') or '')}</title>"
            f"<style>{STYLE}</style></head><body>" + "\n".join(parts) + "</body></html>\n")


def _steps(data: dict[str, Any]) -> str:
    steps = [s for s in data.get("steps") or []]
    rows = [[_e(s.get("title")), _e(s.get("verdict")), _e(_counts(s.get("counts") or {}))] for s in steps]
    classes = [f"v-{str(s.get('verdict', '')).split(' ')[0]}" for s in steps]
    return "<h2>Runbook steps</h2>" + _table(["step", "verdict", "checks"], rows, classes)


def _culprits(problems: list[dict[str, Any]]) -> str:
    found = culprits(problems)
    if not found:
        return "<h2>Culprits</h2><p>None: no failed check blames a service.</p>"
    return "<h2>Culprits</h2>" + _table(["service", "failed checks blaming it"], [[f"<b>{_e(s)}</b>", _e(n)] for s, n in found.items()])


def _problems(problems: list[dict[str, Any]]) -> str:
    if not problems:
        return "<h2>Checks that did not pass</h2><p>None.</p>"
    groups = problem_groups(problems)
    rows = []
    for group in groups[:MAX_GROUPS]:
        checks = group.checks
        listed = "".join(f"<li><code>{_e(c)}</code></li>" for c in checks)
        cell = f"<code>{_e(checks[0])}</code>" if len(checks) == 1 else \
            f"<details><summary>{len(checks)} checks</summary><ul>{listed}</ul></details>"
        rows.append([_e(group.outcome), cell, _e(group.culprit or "—"), _e(group.reason)])
    more = f"<p>… and {len(groups) - MAX_GROUPS} more groups (signoff.json).</p>" if len(groups) > MAX_GROUPS else ""
    return (f"<h2>Checks that did not pass ({len(problems)})</h2>"
            + _table(["outcome", "checks", "culprit", "reason"], rows) + more)


def _decisions(data: dict[str, Any]) -> str:
    records = sorted((data.get("rollbacks") or []) + (data.get("escalations") or []), key=lambda r: str(r.get("time", "")))
    if not records:
        return "<h2>Rollbacks and escalations</h2><p>None.</p>"
    rows = [[_e(r.get("time")), _e(r.get("service") or "the run"), _e(r.get("step")), f"<b>{_e(r.get('outcome'))}</b>",
             _e(r.get("detail")), _e(r.get("rule") or "")] for r in records[:MAX_RECORDS]]
    return "<h2>Rollbacks and escalations</h2>" + _table(["time", "service", "step", "outcome", "detail", "rule"], rows)


def _signature(data: dict[str, Any], verdict: str) -> str:
    executor = data.get("executor") or {}
    where = data.get("ci_url") or (executor.get("buildName") if executor.get("type") not in (None, "local") else "") or ""
    return ("<h2>Sign-off</h2>"
            f"<p>Run by <b>{_e(data.get('who') or '?')}</b> on <b>{_e(data.get('host') or '?')}</b>"
            + (f", {_e(where)}" if where else "") + f"; command <code>{_e(data.get('command'))}</code>; "
            f"selection <code>{_e(data.get('selection') or '(all)')}</code>; results in <code>{_e(data.get('run_folder'))}</code>.</p>"
            f'<div class="signature"><p>Verdict of this run: <b>{_e(verdict)}</b></p>'
            '<p>Release decision: ☐ stays in production &nbsp; ☐ rolled back &nbsp; ☐ held for a human</p>'
            '<p>Signed off by (release manager): <span class="blank">&nbsp;</span> &nbsp; '
            'Date: <span class="blank">&nbsp;</span></p></div>')


def _environment(data: dict[str, Any]) -> str:
    environment = data.get("environment") or {}
    if not environment:
        return ""
    rows = [[_e(k), _e(v)] for k, v in environment.items()]
    return "<h2>Environment</h2><details><summary>service versions, images, checker versions</summary>" + \
        _table(["", ""], rows) + "</details>"
