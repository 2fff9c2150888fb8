"""The canary judge's statistics, against cases worked by hand and against the properties each test must keep."""

from __future__ import annotations

import math

import pytest

from polycheck.checks.canary_stats import bucket_counts, median, rank_test, two_proportion

ALPHA = 0.05


def test_a_zero_error_baseline_against_an_erring_canary_fails() -> None:
    judged = two_proportion(canary_errors=5, canary_total=300, stable_errors=0, stable_total=1200)
    assert judged.worse(ALPHA, 0.01) and judged.p_value < 1e-4 and judged.stable == 0.0, judged
    assert judged.statistic == pytest.approx(4.49, abs=0.05)  # by hand: 0.01667 / sqrt(0.00333 * 0.99667 * (1/300 + 1/1200))


def test_equal_ratios_and_no_errors_at_all_pass() -> None:
    assert not two_proportion(3, 300, 12, 1200).worse(ALPHA, 0.0)
    none = two_proportion(0, 300, 0, 1200)
    assert none.p_value == 1.0 and not none.worse(ALPHA, 0.0)


def test_a_significant_difference_smaller_than_the_effect_size_passes_and_a_handful_of_requests_is_not_significant() -> None:
    tiny = two_proportion(canary_errors=1_150, canary_total=100_000, stable_errors=1_000, stable_total=100_000)
    assert tiny.p_value < ALPHA and not tiny.worse(ALPHA, 0.01), "0.15 points more errors: significant, not material"
    few = two_proportion(canary_errors=1, canary_total=10, stable_errors=5, stable_total=1000)
    assert few.p_value > ALPHA or few.effect < 0.2  # one error in ten requests is no evidence either way
    with pytest.raises(ValueError):
        two_proportion(0, 0, 1, 10)


def test_histogram_buckets_become_counts_and_a_median() -> None:
    counts = bucket_counts([(0.01, 50.0), (0.005, 10.0), (0.025, 90.0), (math.inf, 100.0)])
    assert counts == [(0.005, 10.0), (0.01, 40.0), (0.025, 40.0), (math.inf, 10.0)]
    assert median(counts) == pytest.approx(0.01 + 0.015 * (50 - 50) / 40)  # the 50th of 100 is the top of (0.005, 0.01]


BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, math.inf)


def histogram(weights: tuple[float, ...], total: float) -> list[tuple[float, float]]:
    return [(le, total * w) for le, w in zip(BOUNDS, weights, strict=True)]


def test_a_three_times_slower_canary_is_worse_and_the_same_distribution_is_not() -> None:
    stable = histogram((0.2, 0.6, 0.15, 0.05, 0.0, 0.0, 0.0), 2000)
    slower = histogram((0.0, 0.05, 0.25, 0.6, 0.1, 0.0, 0.0), 500)  # medians about 8 ms vs 33 ms
    judged = rank_test(slower, stable)
    assert judged.worse(ALPHA, 0.1) and judged.effect > 0.9 and judged.canary > 3 * judged.stable, judged
    same = rank_test(histogram((0.2, 0.6, 0.15, 0.05, 0.0, 0.0, 0.0), 500), stable)
    assert same.effect == pytest.approx(0.5) and same.p_value == pytest.approx(0.5, abs=0.01) and not same.worse(ALPHA, 0.1)
    faster = rank_test(stable, slower)
    assert faster.p_value > 0.99 and not faster.worse(ALPHA, 0.1), "a faster canary is never worse"


def test_the_rank_test_matches_a_pair_count_by_hand() -> None:
    # canary: 2 in bucket A, 1 in B; stable: 1 in A, 2 in B -> pairs where the canary is slower: (B>A)=1*1,
    # ties: A-A 2*1, B-B 1*2 count half -> U = 1 + (2 + 2) / 2 = 3; effect = 3 / 9
    judged = rank_test([(0.01, 2.0), (0.1, 1.0)], [(0.01, 1.0), (0.1, 2.0)])
    assert judged.effect == pytest.approx(3 / 9)
    with pytest.raises(ValueError):
        rank_test([(0.01, 0.0)], [(0.01, 3.0)])
