"""Change between two disjoint periods or segments: the two-sample adjusted-Wald test."""

from __future__ import annotations

import math
from dataclasses import dataclass

from app.scoring.core import _CHANGE_BOUND, _STANDARD_NORMAL, Tally, _adjusted_wald, _clip, z_value


@dataclass(frozen=True, slots=True)
class Change:
    difference: float
    low: float
    high: float
    z: float
    p_value: float
    significant: bool
    confidence: float


def compare(first: Tally, second: Tally, *, confidence: float = 0.95) -> Change | None:
    """Two-sample adjusted-Wald test of first minus second; None when either n == 0.

    diff = c1 - c2, SE = sqrt(Var1/n'1 + Var2/n'2), z = diff/SE, p = 2*(1 - Phi(|z|)),
    CI = diff +- z_crit*SE in NPS points, clipped to [-200, 200]; significant if p < 1 - confidence.
    """
    return compare_counts(
        (first.promoters, first.detractors, first.n),
        (second.promoters, second.detractors, second.n),
        confidence=confidence,
    )


Counts = tuple[float, float, float]  # promoters, detractors, n: integers or weighted pseudo-counts


def compare_counts(first: Counts, second: Counts, *, confidence: float = 0.95) -> Change | None:
    """`compare` on (P, D, n) triples, so weighted scores are tested on their pseudo-counts."""
    z_critical = z_value(confidence)
    if first[2] == 0 or second[2] == 0:
        return None
    a = _adjusted_wald(*first)
    b = _adjusted_wald(*second)
    difference = a.centre - b.centre
    # The +3/4 pseudo-counts keep both variances strictly positive, so SE > 0.
    standard_error = math.sqrt(a.variance / a.n_adjusted + b.variance / b.n_adjusted)
    z = difference / standard_error
    # Phi(-|z|) rather than 1 - Phi(|z|): no cancellation for large |z|.
    p_value = min(1.0, 2 * _STANDARD_NORMAL.cdf(-abs(z)))
    return Change(
        difference=100 * difference,
        low=_clip(100 * (difference - z_critical * standard_error), _CHANGE_BOUND),
        high=_clip(100 * (difference + z_critical * standard_error), _CHANGE_BOUND),
        z=z,
        p_value=p_value,
        significant=p_value < 1 - confidence,
        confidence=confidence,
    )
