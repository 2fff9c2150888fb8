"""Pre-deploy gates (runbook Sections 2.2, 5 and 7): deployment windows, high-risk changes, hotfix size, the OpenAPI
contract beside route changes, and the pull request's approval and CI through the GitHub API.

Deployment windows follow Argo CD's sync windows: each window opens at every start of its cron `schedule`, evaluated
in its IANA `timezone` (so 09:00 stays 09:00 across a DST change), and stays open for `duration`. A deploy is denied
while any deny window is open (deny wins), and, when allow windows exist, whenever none of them is open. With no
window at all, deploys are always allowed. Cron schedules are evaluated with cronsim.

The git facts come from `git` in the checkout of the change (`--repo-dir`, default the current directory) between
`--base-ref` and `--head-ref`.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, UTC
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cronsim import CronSim

from polycheck.core.config import DeployWindow, GatesConfig
from polycheck.core.durations import parse_duration

HORIZON = timedelta(days=14)  # how far ahead the next opening is searched
MAX_OCCURRENCES = 5000  # per window and search (a "* * * * *" window has 20160 starts in 14 days)
DEFAULT_ROUTE_PATTERN = (
    r"@(?:app|router|api|bp|blueprint|route)\.(?:get|post|put|patch|delete|route|api_route)\("
    r"|\b(?:Route|Mount|APIRoute)\(|\b(?:app|router)\.(?:get|post|put|patch|delete)\(\s*['\"]/"
)


class GitError(RuntimeError):
    """git could not answer (no checkout, an unknown ref); the message has git's own words."""


# -- configuration ------------------------------------------------------------------------------------------


# -- deployment windows -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Opening:
    """One occurrence of a window: [start, end)."""

    window: DeployWindow
    start: datetime
    end: datetime

    def covers(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def describe(window: DeployWindow) -> str:
    label = f"'{window.name}' " if window.name else ""
    return f"{window.kind} window {label}({window.schedule} for {window.duration}, {window.timezone})"


def _stamp(moment: datetime, zone: str) -> str:
    local = moment.astimezone(ZoneInfo(zone))
    return local.strftime("%a %Y-%m-%d %H:%M %Z (UTC%z)").replace("(UTC+0000)", "").strip()


def _length(window: DeployWindow) -> timedelta:
    return timedelta(seconds=parse_duration(window.duration))


def opening_at(window: DeployWindow, moment: datetime) -> Opening | None:
    """The occurrence of `window` open at `moment`, if any (the latest start at or before it)."""
    local = moment.astimezone(ZoneInfo(window.timezone))
    start = next(iter(CronSim(window.schedule, local + timedelta(seconds=1), reverse=True)), None)
    if start is None:
        return None
    opening = Opening(window, start, start + _length(window))
    return opening if opening.covers(moment) else None


def openings(window: DeployWindow, after: datetime, until: datetime) -> Iterator[Opening]:
    """Occurrences of `window` that start in (after - duration, until]: those open after `after` or opening later."""
    length = _length(window)
    begin = (after - length).astimezone(ZoneInfo(window.timezone))
    for i, start in enumerate(CronSim(window.schedule, begin)):
        if start > until or i >= MAX_OCCURRENCES:
            return
        yield Opening(window, start, start + length)


@dataclass(frozen=True)
class WindowDecision:
    """Whether a deploy at `moment` is allowed, which rule decided, and when the next window opens."""

    moment: datetime
    allowed: bool
    rule: str
    next_open: datetime | None = None
    zone: str = "UTC"

    def sentence(self) -> str:
        when = _stamp(self.moment, self.zone)
        if self.allowed:
            return f"a deploy at {when} is allowed: {self.rule}"
        opens = (f"; the next window opens {_stamp(self.next_open, self.zone)}" if self.next_open
                 else f"; no window opens within {HORIZON.days} days")
        return f"a deploy at {when} is denied by runbook Section 7: {self.rule}{opens}"


def decide(windows: Sequence[DeployWindow], moment: datetime) -> WindowDecision:
    """Argo CD sync-window semantics at `moment` (timezone-aware), with the next opening when denied."""
    zone = windows[0].timezone if windows else "UTC"
    verdict = _allowed(windows, moment)
    if verdict[0]:
        return WindowDecision(moment, True, verdict[1], zone=zone)
    return WindowDecision(moment, False, verdict[1], next_opening(windows, moment), zone)


def _allowed(windows: Sequence[DeployWindow], moment: datetime) -> tuple[bool, str]:
    denies = [o for w in windows if w.kind == "deny" for o in [opening_at(w, moment)] if o]
    if denies:
        o = denies[0]
        return False, (f"inside the {describe(o.window)}, open {_stamp(o.start, o.window.timezone)} "
                       f"to {_stamp(o.end, o.window.timezone)}")
    allows = [w for w in windows if w.kind == "allow"]
    if not allows:
        return True, "no allow window is configured and no deny window is open"
    for window in allows:
        allowed = opening_at(window, moment)
        if allowed:
            return True, f"inside the {describe(window)}, open until {_stamp(allowed.end, window.timezone)}"
    return False, "outside every allow window (" + "; ".join(describe(w) for w in allows) + ")"


def next_opening(windows: Sequence[DeployWindow], moment: datetime) -> datetime | None:
    """The first moment after `moment`, within HORIZON, at which a deploy is allowed."""
    until = moment + HORIZON
    candidates: set[datetime] = set()
    for window in windows:
        for o in openings(window, moment, until):
            candidates.add(o.start if window.kind == "allow" else o.end)
    for candidate in sorted(c.astimezone(UTC) for c in candidates):
        if candidate > moment and _allowed(windows, candidate)[0]:
            return candidate
    return None


def parse_now(text: str | None) -> datetime:
    """--now as a timezone-aware moment (ISO-8601; a time without an offset is UTC); None: the current time."""
    if not text:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--now {text!r} is not an ISO-8601 time such as 2026-11-27T16:00:00+01:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# -- the change under review ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeployRequest:
    """What is being deployed and who said what: the options of a predeploy run."""

    now: str | None = None
    emergency: str | None = None
    sre_approved: str | None = None
    hotfix_approved: str | None = None
    repo_dir: str = "."
    base_ref: str | None = None
    head_ref: str = "HEAD"
    pull_request: int | None = None
    labels: tuple[str, ...] = ()

    @property
    def moment(self) -> datetime:
        return parse_now(self.now)

    @property
    def branch(self) -> str:
        """The head ref as a branch name: refs/heads/, refs/remotes/origin/ and origin/ dropped."""
        ref = self.head_ref
        for prefix in ("refs/heads/", "refs/remotes/origin/", "origin/"):
            ref = ref.removeprefix(prefix)
        return ref


@dataclass(frozen=True)
class Change:
    """The files a change touches and the lines it adds or removes (from git)."""

    base: str
    head: str
    files: tuple[str, ...]
    lines: dict[str, tuple[str, ...]] = field(default_factory=dict)  # file -> added/removed lines

    @property
    def what(self) -> str:
        return f"{self.base}...{self.head}"


def git(repo: str | Path, *args: str, timeout: float = 30.0) -> str:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitError(f"git {' '.join(args)} in {repo}: {exc}") from None
    if done.returncode != 0:
        raise GitError(f"git {' '.join(args)} in {repo} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def read_change(request: DeployRequest) -> Change:
    """The change from --base-ref to --head-ref (the merge base's diff, as a pull request shows it)."""
    if not request.base_ref:
        raise GitError("no --base-ref: the change to deploy is unknown (e.g. --base-ref origin/main)")
    span = f"{request.base_ref}...{request.head_ref}"
    files = tuple(line for line in git(request.repo_dir, "diff", "--name-only", "--no-renames", span).splitlines() if line)
    lines: dict[str, list[str]] = {}
    current = ""
    for line in git(request.repo_dir, "diff", "-U0", "--no-renames", "--no-color", span).splitlines():
        if line.startswith("+++ ") or line.startswith("--- "):
            if line.startswith("+++ "):
                current = line[6:] if line.startswith("+++ b/") else current
            elif line.startswith("--- a/"):
                current = line[6:]
            continue
        if line[:1] in ("+", "-") and current:
            lines.setdefault(current, []).append(line[1:])
    return Change(request.base_ref, request.head_ref, files, {k: tuple(v) for k, v in lines.items()})


@lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    """A path glob as a regex: `**/` any folders (or none), `**` anything, `*` and `?` within one path segment."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def matches(path: str, patterns: Iterable[str]) -> bool:
    return any(_glob(p).match(path) for p in patterns)


# -- the gates ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateResult:
    """passed / failed / skipped, with the sentence that says why."""

    outcome: str
    message: str


def window_gate(gates: GatesConfig, request: DeployRequest) -> GateResult:
    decision = decide(gates.windows, request.moment)
    if decision.allowed:
        return GateResult("passed", decision.sentence())
    if request.emergency:
        return GateResult("passed", f"{decision.sentence()}; allowed as an emergency deploy (--emergency): {request.emergency}")
    return GateResult("failed", f"{decision.sentence()}. An emergency deploy says why with --emergency REASON.")


def high_risk_gate(gates: GatesConfig, request: DeployRequest, change: Change) -> GateResult:
    found: list[str] = []
    labels = set(request.labels)
    for name, rule in gates.high_risk.items():
        files = [f for f in change.files if matches(f, rule.paths)]
        hit_labels = sorted(labels & set(rule.labels))
        if files or hit_labels:
            evidence = ([f"files {', '.join(files[:5])}" + (f" and {len(files) - 5} more" if len(files) > 5 else "")] if files else []) \
                + ([f"label {', '.join(hit_labels)}"] if hit_labels else [])
            found.append(f"{name} ({'; '.join(evidence)})")
    if not found:
        return GateResult("passed", f"{change.what} is no high-risk change ({', '.join(gates.high_risk) or 'none configured'})")
    what = f"{change.what} is a high-risk change: {', '.join(found)}"
    if request.sre_approved:
        return GateResult("passed", f"{what}; approved by SRE {request.sre_approved} (--sre-approved)")
    return GateResult("failed", f"{what}. Runbook Section 7: high-risk deployments require SRE approval "
                                f"(--sre-approved NAME of the approving SRE).")


def hotfix_gate(gates: GatesConfig, request: DeployRequest, change: Change) -> GateResult:
    branch = request.branch
    if not matches(branch, gates.hotfix_branches):
        return GateResult("skipped", f"not a hotfix: branch {branch!r} matches none of {', '.join(gates.hotfix_branches)}")
    count, limit = len(change.files), gates.hotfix_max_files
    listed = ", ".join(change.files[:10]) + (f" and {count - 10} more" if count > 10 else "")
    if count <= limit:
        return GateResult("passed", f"hotfix branch {branch} changes {count} file(s) ({listed}), within {limit}")
    what = f"hotfix branch {branch} changes {count} files ({listed}); runbook Section 2.2 allows {limit} unless approved"
    if request.hotfix_approved:
        return GateResult("passed", f"{what}: approved by {request.hotfix_approved} (--hotfix-approved)")
    return GateResult("failed", f"{what} (--hotfix-approved NAME)")


def openapi_gate(gates: GatesConfig, change: Change) -> GateResult:
    pattern = re.compile(gates.route_pattern or DEFAULT_ROUTE_PATTERN)
    contract = [f for f in change.files if matches(f, gates.openapi_paths)]
    routes = sorted({f for f in change.files if matches(f, gates.route_paths) and not matches(f, gates.openapi_paths)}
                    | {f for f, lines in change.lines.items() if any(pattern.search(line) for line in lines)
                       and not matches(f, gates.openapi_paths)})
    if not routes:
        return GateResult("passed", f"{change.what} changes no route")
    if contract:
        return GateResult("passed", f"routes changed in {', '.join(routes)} and the OpenAPI contract with them ({', '.join(contract)})")
    return GateResult("failed", f"{change.what} changes routes in {', '.join(routes)} but no OpenAPI file "
                                f"({', '.join(gates.openapi_paths)}): runbook Section 5 'OpenAPI updated'")


# -- GitHub ---------------------------------------------------------------------------------------------------


class GitHubUnavailable(RuntimeError):
    """The GitHub API could not be asked (network, 5xx, rate limit, bad token): the gate cannot judge."""


@dataclass
class GitHub:
    """The few GitHub REST calls the gates make, with a token and a timeout."""

    api_url: str
    repo: str
    token: str
    timeout: float = 10.0

    def get(self, path: str, **params: Any) -> Any:
        import httpx

        url = f"{self.api_url.rstrip('/')}/repos/{self.repo}{path}"
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/vnd.github+json",
                   "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "polycheck"}
        try:
            response = httpx.get(url, headers=headers, params=params or None, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise GitHubUnavailable(f"GET {url}: {type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            detail = response.text[:200].replace("\n", " ")
            raise GitHubUnavailable(f"GET {url}: HTTP {response.status_code}: {detail}")
        return response.json()

    def pull(self, number: int) -> dict[str, Any]:
        return self.get(f"/pulls/{number}")

    def reviews(self, number: int) -> list[dict[str, Any]]:
        return list(self.get(f"/pulls/{number}/reviews", per_page=100))

    def check_runs(self, sha: str) -> list[dict[str, Any]]:
        return list(self.get(f"/commits/{sha}/check-runs", per_page=100).get("check_runs", []))

    def status(self, sha: str) -> dict[str, Any]:
        return dict(self.get(f"/commits/{sha}/status", per_page=100))


def approval_gate(github: GitHub, number: int) -> GateResult:
    """Approved: at least one reviewer's latest verdict approves, and no reviewer's latest verdict asks for changes."""
    latest: dict[str, str] = {}
    for review in github.reviews(number):
        state, who = review.get("state", ""), (review.get("user") or {}).get("login", "?")
        if state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
            latest[who] = state
    approved = sorted(w for w, s in latest.items() if s == "APPROVED")
    blocking = sorted(w for w, s in latest.items() if s == "CHANGES_REQUESTED")
    where = f"pull request #{number} of {github.repo}"
    if blocking:
        return GateResult("failed", f"{where}: changes requested by {', '.join(blocking)} (runbook Section 3 Step 1: PR approved)")
    if not approved:
        return GateResult("failed", f"{where} is not approved by any reviewer (runbook Section 3 Step 1: PR approved; "
                                    "Section 5: code reviewed)")
    return GateResult("passed", f"{where} is approved by {', '.join(approved)}")


GREEN = ("success", "neutral", "skipped")


def ci_gate(github: GitHub, number: int) -> GateResult:
    """CI green on the PR's head commit: every check run completed and green, and the combined status success."""
    sha = str((github.pull(number).get("head") or {}).get("sha", ""))
    if not sha:
        raise GitHubUnavailable(f"pull request #{number} of {github.repo} has no head sha")
    runs = github.check_runs(sha)
    status = github.status(sha)
    bad = [f"{r.get('name')} {r.get('conclusion') or r.get('status')}" for r in runs
           if r.get("status") != "completed" or r.get("conclusion") not in GREEN]
    bad += [f"{s.get('context')} {s.get('state')}" for s in status.get("statuses", []) if s.get("state") != "success"]
    where = f"CI of pull request #{number} ({sha[:12]})"
    if not runs and not status.get("statuses"):
        return GateResult("failed", f"{where}: no check run and no status reported: CI did not run (runbook Section 3 Step 2)")
    if bad:
        return GateResult("failed", f"{where} is not green: {', '.join(bad)} (runbook Section 3 Step 1: tests pass)")
    return GateResult("passed", f"{where} is green ({len(runs)} check runs, {len(status.get('statuses', []))} statuses)")


def enforce(result: GateResult) -> str:
    """A gate's result as the check's outcome: a failure with its sentence, a skip with its reason; the sentence."""
    __tracebackhide__ = True
    import pytest

    from polycheck.core.failures import check_failed

    if result.outcome == "skipped":
        pytest.skip(result.message)
    if result.outcome == "failed":
        check_failed(result.message)
    return result.message
