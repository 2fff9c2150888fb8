"""The canary judge's statistics: the canary against the stable version over the same window (runbook Section 2.3).

- 5xx ratio: a one-sided **two-proportion z-test** (pooled), H1 "the canary errs more". A zero-error baseline
  against an erring canary still has a pooled ratio above 0, so it is judged, never divided by zero.
- latency: a one-sided **Mann-Whitney U test** over the two histograms' buckets (each bucket one group of tied
  ranks, with the tie correction of the variance; normal approximation), H1 "the canary is slower". Its effect
  size is the probability of superiority, P(a canary request is slower than a stable one), ties counted half.

A difference fails the step only when it is significant (p below 1 - confidence) *and* larger than its effect
size: with thousands of requests a trivial difference is significant, with a handful a large one is not.
Pure functions: the check (polycheck.checks.canary) queries Prometheus and words the verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Comparison:
    """One test of canary against stable: its statistic, one-sided p-value and effect, and what it rests on."""

    test: str
    statistic: float  # z of the two-proportion test; z of U for the rank test
    p_value: float
    effect: float  # canary ratio - stable ratio; P(canary slower) for latency
    canary: float  # the canary's ratio, or its median (s)
    stable: float
    canary_count: float
    stable_count: float

    def worse(self, alpha: float, effect_size: float) -> bool:
        """Significant at `alpha` and larger than `effect_size` (for latency, P(slower) above 0.5 + effect_size)."""
        return self.p_value < alpha and self.effect > effect_size


def upper_tail(z: float) -> float:
    """P(Z > z) of the standard normal."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def two_proportion(canary_errors: float, canary_total: float, stable_errors: float, stable_total: float) -> Comparison:
    """H1: the canary's 5xx ratio is above the stable's. Totals must be above 0."""
    if canary_total <= 0 or stable_total <= 0:
        raise ValueError("both sides need requests")
    p_c, p_s = canary_errors / canary_total, stable_errors / stable_total
    pooled = (canary_errors + stable_errors) / (canary_total + stable_total)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / canary_total + 1 / stable_total))
    if spread == 0:  # no error on either side (or all errors on both): no difference to see
        z, p = 0.0, 1.0 if p_c <= p_s else 0.0
    else:
        z = (p_c - p_s) / spread
        p = upper_tail(z)
    return Comparison("two-proportion z-test", z, p, p_c - p_s, p_c, p_s, canary_total, stable_total)


def bucket_counts(cumulative: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Per-bucket counts (upper bound, count) from a Prometheus histogram's cumulative (le, count), sorted by le;
    counts that go down (a reset between scrapes) count 0."""
    ordered = sorted(cumulative, key=lambda pair: pair[0])
    out, previous = [], 0.0
    for le, count in ordered:
        out.append((le, max(0.0, count - previous)))
        previous = max(previous, count)
    return out


def median(buckets: Sequence[tuple[float, float]]) -> float:
    """The median by linear interpolation inside its bucket, as histogram_quantile(0.5) does."""
    total = sum(count for _, count in buckets)
    if total <= 0:
        return math.nan
    half, seen, lower = total / 2, 0.0, 0.0
    for le, count in buckets:
        if seen + count >= half and count > 0:
            if math.isinf(le):
                return lower
            return lower + (le - lower) * (half - seen) / count
        seen += count
        lower = le if not math.isinf(le) else lower
    return lower


def rank_test(canary: Sequence[tuple[float, float]], stable: Sequence[tuple[float, float]]) -> Comparison:
    """H1: the canary's latencies are larger. `canary`, `stable`: per-bucket counts over the same bucket bounds."""
    bounds = sorted({le for le, _ in canary} | {le for le, _ in stable})
    c = {le: n for le, n in canary}
    s = {le: n for le, n in stable}
    n_c, n_s = sum(c.values()), sum(s.values())
    if n_c <= 0 or n_s <= 0:
        raise ValueError("both sides need observations")
    total = n_c + n_s
    rank, ranks_c, ties = 0.0, 0.0, 0.0
    for le in bounds:
        group = c.get(le, 0.0) + s.get(le, 0.0)
        if group <= 0:
            continue
        middle = rank + (group + 1) / 2  # the average rank of the group's members
        ranks_c += c.get(le, 0.0) * middle
        ties += group ** 3 - group
        rank += group
    u_c = ranks_c - n_c * (n_c + 1) / 2  # pairs where the canary is slower (ties half)
    mean = n_c * n_s / 2
    variance = n_c * n_s / 12 * ((total + 1) - ties / (total * (total - 1))) if total > 1 else 0.0
    if variance <= 0:
        z, p = 0.0, 1.0
    else:
        z = (u_c - mean) / math.sqrt(variance)
        p = upper_tail(z)
    return Comparison("Mann-Whitney U test over the histogram buckets", z, p, u_c / (n_c * n_s),
                      median(list(canary)), median(list(stable)), n_c, n_s)
