"""How a check fails: with a message an on-call can act on, the service the evidence blames, and no traceback.

A failure is one of three things, and only the first can roll anything back:

- failed: the service the evidence names (its culprit) broke the contract;
- blocked: the check could not do its own work because another service (the culprit) is broken;
  that is decided by the plugin from the check's subjects, not here;
- inconclusive: the checker itself could not measure (no network, Prometheus or the Kubernetes API
  down, a secret missing); it says nothing about the release.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NoReturn

import pytest

Failed = pytest.fail.Exception


class CannotMeasure(Exception):
    """Mixed into the errors of the checker's own instruments (Kubernetes API, Prometheus): raised in a check,
    they make it inconclusive, wherever they escape from."""


class CheckFailure(Failed):  # type: ignore[misc, valid-type]
    """A check's failure with its evidence: the culprit service(s), or inconclusive when nothing was measured."""

    def __init__(self, message: str, *, culprits: Iterable[str] = (), inconclusive: bool = False,
                 escalation: str | None = None, dependency: str | None = None) -> None:
        super().__init__(message, pytrace=False)
        self.culprits: tuple[str, ...] = tuple(dict.fromkeys(c for c in culprits if c))
        self.inconclusive = inconclusive
        self.escalation = escalation  # a runbook Section 9 reason this failure escalates for at once
        self.dependency = dependency  # the culprit's own dependency it reports impaired (Kafka, its database)


def check_failed(message: str, *, culprit: str | None = None, culprits: Iterable[str] = (), escalation: str | None = None,
                 dependency: str | None = None) -> NoReturn:
    """Fail the current check with `message` alone, blaming `culprit` (or `culprits`) when the evidence names one;
    `dependency` when the culprit reports a dependency of its own impaired (a rollback would not mend it)."""
    __tracebackhide__ = True
    blamed = ([culprit] if culprit else []) + list(culprits)
    raise CheckFailure(message, culprits=blamed, escalation=escalation, dependency=dependency)


def inconclusive(message: str) -> NoReturn:
    """The checker could not measure: not a verdict on the release, never a rollback."""
    __tracebackhide__ = True
    raise CheckFailure(f"inconclusive: {message}", inconclusive=True)


def culprits_of(exc: BaseException | None) -> tuple[str, ...]:
    return exc.culprits if isinstance(exc, CheckFailure) else ()


def is_inconclusive(exc: BaseException | None) -> bool:
    return isinstance(exc, CannotMeasure) or (isinstance(exc, CheckFailure) and exc.inconclusive)
