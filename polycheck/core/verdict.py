"""One check's verdict: a frozen value built once per report, carried as one JSON user property.

Built by the plugin (`polycheck.pytest_plugin.verdicts.verdict_of`) from the check and what it raised, the same
way for a check that ran in its turn and one that ran ahead; read back with `Verdict.of(report)` by the terminal,
JUnit, Allure, the sign-off, the probe metrics and the rollback plugin. The property crosses from an xdist worker
to the controller as a plain string (user properties must be serialisable), so this module is its one
serialiser.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any
from collections.abc import Iterable

PASSED, FAILED, BLOCKED, INCONCLUSIVE, SKIPPED = "passed", "failed", "blocked", "inconclusive", "skipped"
FLAKY, NOT_RUN = "flaky", "not run"
OUTCOMES = (PASSED, FAILED, BLOCKED, INCONCLUSIVE, FLAKY, NOT_RUN, SKIPPED)
PROPERTY = "polycheck_verdict"  # the one user property; everything else a report says of its check is inside
REASON_LIMIT = 2000  # characters of the reason kept for the audit log, the escalation and the sign-off


@dataclass(frozen=True)
class Verdict:
    """What one phase of a check says: its outcome, who is to blame, and what a failure may do."""

    outcome: str
    subjects: tuple[str, ...] = ()  # the services the check judges (its rollback marker's and its parameter's)
    culprits: tuple[str, ...] = ()  # the service(s) the evidence blames
    candidates: tuple[str, ...] = ()  # services the evidence cannot tell apart (then no culprit acts)
    may_roll_back: bool = False  # the check is marked rollback
    roll_back_why: str = ""  # why it may or may not roll back, for the audit log
    escalation: str | None = None  # a runbook Section 9 reason it escalates for at once
    reason: str = ""  # the failure's first words, redacted once (empty when it passed)
    steps: tuple[str, ...] = ()  # the runbook steps the check belongs to
    links: tuple[tuple[str, str], ...] = ()  # its evidence (name, url): Grafana, Jaeger, Loki
    start: float = 0.0  # epoch seconds: when the check really ran (also when it ran ahead)
    stop: float = 0.0
    phase: str = "call"  # setup | call | teardown
    dependency: str = ""  # the culprit's own dependency it reports impaired: rolled back only if rollback.on_dependency says so
    shared_cause: str = ""  # why a failure was turned inconclusive: a cause shared by most services (no rollback waits on)

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown verdict outcome {self.outcome!r}: one of {', '.join(OUTCOMES)}")

    # -- reading ------------------------------------------------------------------------------------
    @property
    def culprit(self) -> str:
        """The culprits as one text (`order` or `order,payment`), for labels and the sign-off."""
        return ",".join(self.culprits)

    @property
    def acts(self) -> bool:
        """Whether the rollback plugin has anything to decide on (a failure or an inconclusive phase)."""
        return self.outcome in (FAILED, INCONCLUSIVE) and self.phase != "teardown"

    def with_(self, **changes: Any) -> Verdict:
        return replace(self, **changes)

    # -- the one serialiser -------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Verdict:
        data = json.loads(text)
        for name in ("subjects", "culprits", "candidates", "steps"):
            data[name] = tuple(data.get(name) or ())
        data["links"] = tuple(tuple(pair) for pair in data.get("links") or ())
        return cls(**data)

    @classmethod
    def of(cls, report: Any) -> Verdict | None:
        """The verdict a report carries (the last one attached), or None for a report the plugin did not judge."""
        for name, value in reversed(list(getattr(report, "user_properties", ()) or ())):
            if name == PROPERTY:
                return value if isinstance(value, Verdict) else cls.from_json(str(value))
        return None

    def attach(self, properties: list[tuple[str, object]]) -> None:
        """Carry the verdict in a report's user properties (replacing an earlier one)."""
        properties[:] = [(name, value) for name, value in properties if name != PROPERTY]
        properties.append((PROPERTY, self.to_json()))


def first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def unique(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n for n in names if n))
