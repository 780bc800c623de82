"""Change between two disjoint periods or segments: the two-sample adjusted-Wald test."""

from __future__ import annotations

import math
from dataclasses import dataclass

from app.scoring.core import _CHANGE_BOUND, _STANDARD_NORMAL, Tally, _adjusted_wald, _clip, z_value


@dataclass(frozen=True, slots=True)
class Change:
    """first minus second. `difference` is the point estimate a reader sees (the plain difference
    of the two displayed scores); the test and the interval work on the adjusted centres, so the
    interval is centred on `adjusted_difference`, not on `difference`."""

    difference: float
    adjusted_difference: float
    low: float
    high: float
    z: float
    p_value: float
    significant: bool
    confidence: float


Counts = tuple[float, float, float]  # promoters, detractors, n: integers or weighted pseudo-counts


def compare(first: Tally, second: Tally, *, confidence: float = 0.95) -> Change | None:
    """first minus second; None when either n == 0.

    difference = NPS1 - NPS2 (the raw scores); adjusted_difference = c1 - c2 on the adjusted
    centres, SE = sqrt(Var1/n'1 + Var2/n'2), z = (c1 - c2)/SE, p = 2*Phi(-|z|),
    CI = (c1 - c2) +- z_crit*SE in NPS points, clipped to [-200, 200]; significant if
    p < 1 - confidence.
    """
    z_value(confidence)
    if first.nps is None or second.nps is None:
        return None
    return two_sample_test(
        (first.promoters, first.detractors, first.n),
        (second.promoters, second.detractors, second.n),
        difference=first.nps - second.nps,
        confidence=confidence,
    )


def two_sample_test(
    first: Counts, second: Counts, *, difference: float, confidence: float
) -> Change | None:
    """The adjusted-Wald test on (P, D, n) triples, reported with the given point estimate
    `difference` (the displayed scores' difference); None when either n == 0."""
    z_critical = z_value(confidence)
    if first[2] == 0 or second[2] == 0:
        return None
    a = _adjusted_wald(*first)
    b = _adjusted_wald(*second)
    adjusted = a.centre - b.centre
    # The +3/4 pseudo-counts keep both variances strictly positive, so SE > 0.
    standard_error = math.sqrt(a.variance / a.n_adjusted + b.variance / b.n_adjusted)
    z = adjusted / standard_error
    # Phi(-|z|) rather than 1 - Phi(|z|): no cancellation for large |z|.
    p_value = min(1.0, 2 * _STANDARD_NORMAL.cdf(-abs(z)))
    return Change(
        difference=difference,
        adjusted_difference=100 * adjusted,
        low=_clip(100 * (adjusted - z_critical * standard_error), _CHANGE_BOUND),
        high=_clip(100 * (adjusted + z_critical * standard_error), _CHANGE_BOUND),
        z=z,
        p_value=p_value,
        significant=p_value < 1 - confidence,
        confidence=confidence,
    )
