"""The one verdict value: built once, carried as one JSON user property, read back the same everywhere."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from polycheck.core.verdict import FAILED, INCONCLUSIVE, PASSED, PROPERTY, Verdict


def test_a_verdict_crosses_as_one_json_property_and_reads_back_equal() -> None:
    verdict = Verdict(FAILED, subjects=("order", "payment"), culprits=("payment",), may_roll_back=True,
                      escalation="runbook Section 9: payment errors detected", reason="payment declined",
                      steps=("smoke",), links=(("Jaeger trace", "http://jaeger/trace/1"),), start=1.0, stop=2.5)
    properties: list[tuple[str, object]] = [("verdict", "failed")]
    verdict.attach(properties)
    assert [name for name, _ in properties] == ["verdict", PROPERTY]
    assert isinstance(properties[-1][1], str)  # serialisable: it crosses from an xdist worker as text
    assert Verdict.of(SimpleNamespace(user_properties=properties)) == verdict
    assert verdict.culprit == "payment" and verdict.acts


def test_attaching_again_replaces_the_earlier_verdict() -> None:
    properties: list[tuple[str, object]] = []
    Verdict(PASSED).attach(properties)
    Verdict(INCONCLUSIVE, reason="no data").attach(properties)
    assert len(properties) == 1
    read = Verdict.of(SimpleNamespace(user_properties=properties))
    assert read is not None and read.outcome == INCONCLUSIVE and read.reason == "no data"


def test_a_report_without_a_verdict_reads_none_and_an_unknown_outcome_is_refused() -> None:
    assert Verdict.of(SimpleNamespace(user_properties=[("other", "x")])) is None
    with pytest.raises(ValueError, match="unknown verdict outcome 'broken'"):
        Verdict("broken")


def test_a_teardown_or_a_pass_has_nothing_to_decide() -> None:
    assert not Verdict(PASSED).acts
    assert not Verdict(FAILED, phase="teardown").acts
    assert Verdict(INCONCLUSIVE).acts
