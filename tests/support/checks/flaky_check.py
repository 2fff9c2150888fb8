"""A check that fails on its first attempt and passes on its rerun: the self-tests' FLAKY case.

Its attempts are counted in the file $POLYCHECK_FLAKY_COUNTER (set by the self-test), so it fails exactly once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from polycheck.core.failures import check_failed


@pytest.mark.smoke
@pytest.mark.rollback("search")
@pytest.mark.flaky(reruns=1)
def test_search_answers_on_the_second_try() -> None:
    counter = Path(os.environ["POLYCHECK_FLAKY_COUNTER"])
    attempts = int(counter.read_text() or "0") + 1 if counter.exists() else 1
    counter.write_text(str(attempts))
    if attempts == 1:
        check_failed("search answered 503 on the first try (request id req-first-attempt)", culprit="search")
