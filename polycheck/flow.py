"""Business flows in named steps: a failure says which step of the flow broke."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

import pytest

from .failures import check_failed
from .polling import PollTimeout, poll

T = TypeVar("T")


@contextmanager
def step(description: str) -> Iterator[None]:
    """Prefix any failure inside with the flow step, e.g. "step 'pay order ord_1 with tok_sandbox_visa': ..."."""
    __tracebackhide__ = True
    try:
        yield
    except pytest.fail.Exception as exc:
        check_failed(f"step '{description}': {exc.msg}")
    except (PollTimeout, AssertionError) as exc:
        check_failed(f"step '{description}': {exc}")


def wait_for(
    probe: Callable[[], T], until: Callable[[T], bool], *, timeout: float, what: str, describe: Callable[[T], str] = repr
) -> T:
    """Poll `probe` until `until` holds (the one polling helper, with a deadline and the last observation)."""
    return poll(probe, until, timeout=timeout, what=what, describe=describe, interval=0.05, max_interval=0.5)


def describe_order(order: dict[str, Any]) -> str:
    return (
        f"order {order.get('id')} status {order.get('status')!r}, payment {order.get('payment_id')}, "
        f"reservation {order.get('reservation_id')}"
    )
