"""The polling helper: returns as soon as the outcome holds, and its timeout says what it last saw."""

from __future__ import annotations

import pytest

from polycheck.core.polling import PollTimeout, poll


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_returns_the_first_value_that_satisfies() -> None:
    values = iter(["pending_payment", "paid", "confirmed", "never read"])
    clock = FakeClock()
    result = poll(lambda: next(values), lambda s: s == "confirmed", timeout=5, what="order confirmed", clock=clock, sleep=clock.sleep)
    assert result == "confirmed"
    assert len(clock.sleeps) == 2


def test_timeout_names_the_outcome_attempts_and_last_observation() -> None:
    clock = FakeClock()
    with pytest.raises(PollTimeout) as err:
        poll(lambda: {"status": "paid"}, lambda o: o["status"] == "confirmed", timeout=2, what="order ord_1 confirmed",
             describe=lambda o: f"status {o['status']}", clock=clock, sleep=clock.sleep)
    message = str(err.value)
    assert message.startswith("order ord_1 confirmed: not reached within 2 s (")
    assert "last observed: status paid" in message
    assert err.value.last == {"status": "paid"}
    assert err.value.attempts >= 2


def test_never_sleeps_past_the_deadline() -> None:
    clock = FakeClock()
    with pytest.raises(PollTimeout):
        poll(lambda: 0, lambda v: False, timeout=1.0, what="x", interval=0.4, max_interval=5, clock=clock, sleep=clock.sleep)
    assert clock.now == pytest.approx(1.0)


def test_interval_backs_off_up_to_the_maximum() -> None:
    clock = FakeClock()
    with pytest.raises(PollTimeout):
        poll(lambda: 0, lambda v: False, timeout=100, what="x", interval=0.1, max_interval=0.5, clock=clock, sleep=clock.sleep)
    assert clock.sleeps[0] == pytest.approx(0.1)
    assert clock.sleeps[1] == pytest.approx(0.15)
    assert max(clock.sleeps) == pytest.approx(0.5)


def test_listed_errors_are_observations_and_retried() -> None:
    calls = iter([ConnectionError("refused"), ConnectionError("refused"), "ok"])

    def probe() -> str:
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    clock = FakeClock()
    assert poll(probe, lambda v: v == "ok", timeout=5, what="x", retry_on=(ConnectionError,), clock=clock, sleep=clock.sleep) == "ok"


def test_last_error_is_reported_when_time_runs_out() -> None:
    def probe() -> str:
        raise ConnectionError("connection refused")

    clock = FakeClock()
    with pytest.raises(PollTimeout, match=r"last observed: ConnectionError: connection refused"):
        poll(probe, lambda v: True, timeout=1, what="x", retry_on=(ConnectionError,), clock=clock, sleep=clock.sleep)


def test_other_errors_propagate_at_once() -> None:
    def probe() -> str:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        poll(probe, lambda v: True, timeout=5, what="x", retry_on=(ConnectionError,))


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError):
        poll(lambda: 1, lambda v: True, timeout=0, what="x")


def test_a_slow_answer_is_not_followed_by_a_full_wait() -> None:
    """The next look starts `interval` after the last one started: a probe that itself took longer than the
    interval (a far-away service) is asked again at once, a quick one after the rest of the interval."""
    clock = FakeClock()
    answers = iter([(0.3, "paid"), (0.02, "paid"), (0.0, "confirmed")])

    def probe() -> str:
        took, status = next(answers)
        clock.now += took
        return status

    assert poll(probe, lambda s: s == "confirmed", timeout=5, what="order confirmed", interval=0.1, max_interval=0.1,
                clock=clock, sleep=clock.sleep) == "confirmed"
    assert clock.sleeps == [0.0, pytest.approx(0.08)]
