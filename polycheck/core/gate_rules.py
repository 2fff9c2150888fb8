"""The rules a `[gates]` table must keep (cron schedules, IANA time zones, durations): checked when the env file
is loaded, so a wrong gate setting is a usage error before any check runs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from polycheck.core.durations import parse_duration

if TYPE_CHECKING:
    from polycheck.core.config import GatesConfig

WINDOW_KINDS = ("allow", "deny")


def validate_gates(gates: GatesConfig) -> Iterator[tuple[str, str]]:
    """(where, what is wrong) for each invalid setting of [gates]."""
    for i, window in enumerate(gates.windows):
        where = f"gates.windows[{i}]"
        if window.kind not in WINDOW_KINDS:
            yield f"{where}.kind", f"must be allow or deny, got {window.kind!r}"
        try:
            CronSim(window.schedule, datetime(2026, 1, 1))
        except (CronSimError, ValueError) as exc:
            yield f"{where}.schedule", f"{window.schedule!r} is not a cron schedule (minute hour day month weekday): {exc}"
        try:
            ZoneInfo(window.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            yield f"{where}.timezone", f"{window.timezone!r} is not an IANA time zone such as Europe/Berlin or UTC"
        try:
            if parse_duration(window.duration) <= 0:
                raise ValueError
        except ValueError:
            yield f"{where}.duration", f"{window.duration!r} is not a positive duration such as 8h or 1h30m"
    if gates.route_pattern:
        try:
            re.compile(gates.route_pattern)
        except re.error as exc:
            yield "gates.route_pattern", f"is not a regular expression: {exc}"
    if gates.github_repo and not re.fullmatch(r"[\w.-]+/[\w.-]+", gates.github_repo):
        yield "gates.github_repo", f"must be owner/name, got {gates.github_repo!r}"
    if gates.hotfix_max_files < 0:
        yield "gates.hotfix_max_files", "must be 0 or more"
