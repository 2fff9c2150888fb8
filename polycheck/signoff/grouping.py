"""The terminal's problem lines, grouped by reason: checks that share one outcome, culprit and reason (every check
inconclusive because the runner reaches nothing, a refused sign-in failing twenty set-ups) are one line with their
count, so a shared reason is said once; a reason of its own keeps its own line. The files (signoff.md,
signoff.json, JUnit, Allure) still name every check."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

LISTED_ONE_BY_ONE = 2  # up to this many checks sharing a reason are still listed check by check
CHECK_REASON_CHARS = 200  # of a check's own reason, on its line
SHARED_REASON_CHARS = 500  # of a shared reason: said once, so it may say more


@dataclass(frozen=True)
class ReasonGroup:
    """The checks whose outcome, culprit and reason are the same."""

    outcome: str  # failed | blocked | inconclusive (or flaky, not run: any word)
    culprit: str
    reason: str
    checks: tuple[str, ...]  # node ids, in the order they were reported

    @property
    def shared(self) -> bool:
        return len(self.checks) > LISTED_ONE_BY_ONE

    def lines(self, *, check_chars: int = CHECK_REASON_CHARS, shared_chars: int = SHARED_REASON_CHARS) -> list[str]:
        """One line for a shared reason (`INCONCLUSIVE 150 checks: why`), else one line per check, as before."""
        blame = f" [culprit: {self.culprit}]" if self.culprit else ""
        word = f"{self.outcome.upper():12}"
        if self.shared:
            return [f"{word} {len(self.checks)} checks{blame}: {self.reason[:shared_chars]}"]
        return [f"{word} {check}{blame}: {self.reason[:check_chars]}" for check in self.checks]


def group_by_reason(problems: Iterable[tuple[str, str, str, str]]) -> list[ReasonGroup]:
    """(outcome, node id, culprit, reason) of each problem → its groups, in the order each reason first came."""
    found: dict[tuple[str, str, str], list[str]] = {}
    for outcome, check, culprit, reason in problems:
        found.setdefault((outcome, culprit, reason), []).append(check)
    return [ReasonGroup(outcome, culprit, reason, tuple(checks)) for (outcome, culprit, reason), checks in found.items()]


def capped_lines(groups: list[ReasonGroup], max_lines: int, **chars: int) -> tuple[list[str], int]:
    """At most `max_lines` lines of `groups` and how many checks they leave unnamed (the caller says where they are)."""
    lines: list[str] = []
    named = 0
    for group in groups:
        for line in group.lines(**chars):
            if len(lines) == max_lines:
                return lines, sum(len(g.checks) for g in groups) - named
            lines.append(line)
            named += len(group.checks) if group.shared else 1
    return lines, 0
