"""Business flows in named steps: a failure says which step broke and which service the evidence blames.

Each step names the service that owns it (`blame`). An answer off the contract already names the
service that gave it (see `attribution`), and that evidence wins. When a step fails without such an
answer (an asynchronous outcome that never came, a body that reads wrong), its `diagnose` callback looks
at the state the flow left behind and names the culprit among the services involved, e.g. "the order
never confirmed, and its payment reads declined" blames payment; where that state cannot tell two services
apart (the order `paid`, its reservation still `held`), it names both as candidates, and nothing is rolled
back. Without a diagnosis, the owner is blamed.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, TypeVar
from collections.abc import Callable, Iterator

import pytest

from polycheck.core.failures import CheckFailure
from polycheck.core.polling import PollTimeout, poll

T = TypeVar("T")
# (the culprit, or the candidates the evidence cannot tell apart, and the evidence in words)
Diagnosis = tuple["str | tuple[str, ...]", str]
Diagnose = Callable[[], "Diagnosis | None"]


def diagnosed(diagnose: Diagnose | None) -> Diagnosis | None:
    """Run a diagnosis; one that cannot look (its own requests fail) diagnoses nothing."""
    if diagnose is None:
        return None
    try:
        return diagnose()
    except (CheckFailure, pytest.fail.Exception, AssertionError, LookupError, NameError, TypeError, ValueError):
        return None


@contextmanager
def step(description: str, *, blame: str | None = None, diagnose: Diagnose | None = None) -> Iterator[None]:
    """Prefix any failure inside with the step, e.g. "step 'pay order ord_1': ...", and name its culprit."""
    __tracebackhide__ = True
    try:
        yield
    except CheckFailure as exc:
        if exc.inconclusive or exc.culprits:
            raise CheckFailure(f"step '{description}': {exc.msg}", culprits=exc.culprits, inconclusive=exc.inconclusive,
                               escalation=exc.escalation, dependency=exc.dependency) from None
        _fail(description, str(exc.msg), blame, diagnose)
    except pytest.fail.Exception as exc:
        _fail(description, str(exc.msg), blame, diagnose)
    except (PollTimeout, AssertionError) as exc:
        _fail(description, str(exc), blame, diagnose)


def blamed(found: Diagnosis) -> tuple[tuple[str, ...], str]:
    """A diagnosis as (culprits, "blamed on order or inventory: the evidence")."""
    who, evidence = found
    culprits = (who,) if isinstance(who, str) else tuple(who)
    return culprits, f"blamed on {' or '.join(culprits)}: {evidence}"


def _fail(description: str, message: str, blame: str | None, diagnose: Diagnose | None) -> None:
    __tracebackhide__ = True
    found = diagnosed(diagnose)
    if found is not None:
        culprits, words = blamed(found)
        raise CheckFailure(f"step '{description}': {message}\n  {words}", culprits=culprits) from None
    raise CheckFailure(f"step '{description}': {message}", culprits=[blame] if blame else []) from None


def wait_for(
    probe: Callable[[], T],
    until: Callable[[T], bool],
    *,
    timeout: float,
    what: str,
    describe: Callable[[T], str] = repr,
    stop: Callable[[T], bool] | None = None,
) -> T:
    """Poll `probe` until `until` holds, or fail at once when `stop` sees a terminal state (the one polling helper)."""
    return poll(probe, until, timeout=timeout, what=what, describe=describe, stop=stop, interval=0.05, max_interval=0.5)


def describe_order(order: dict[str, Any]) -> str:
    return (
        f"order {order.get('id')} status {order.get('status')!r}, payment {order.get('payment_id')}, "
        f"reservation {order.get('reservation_id')}"
    )
