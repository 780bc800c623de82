"""Time-to-event figures for follow-up cases: the Kaplan-Meier estimator with right-censoring,
its median and p90, and the difference of two shares (recovered with a case vs without).

Standard library only; durations are in any unit (the callers use hours).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from app.scoring.core import _STANDARD_NORMAL, z_value
from app.scoring.rates import wilson_interval


@dataclass(frozen=True, slots=True)
class Survival:
    """Kaplan-Meier summary: `median` / `p90` are the smallest t with S(t) <= 0.5 / 0.1 (None
    when the curve never gets there); n counts every subject, censored those not yet observed."""

    median: float | None
    p90: float | None
    n: int
    censored: int


def kaplan_meier(observations: Iterable[tuple[float, bool]]) -> list[tuple[float, float]]:
    """The step function [(t, S(t))] at each distinct event time, for (duration, observed) pairs.

    S(t) = prod over event times t_i <= t of (1 - d_i / n_i), n_i = subjects still at risk just
    before t_i (a subject censored at t_i is still at risk at t_i: events first, the usual tie
    rule), d_i = events at t_i.
    """
    rows = sorted(observations)
    if any(duration < 0 for duration, _ in rows):
        raise ValueError("durations must be >= 0")
    at_risk = len(rows)
    survival = 1.0
    steps: list[tuple[float, float]] = []
    i = 0
    while i < len(rows):
        t = rows[i][0]
        events = total = 0
        while i < len(rows) and rows[i][0] == t:
            events += rows[i][1]
            total += 1
            i += 1
        if events:
            survival *= 1 - events / at_risk
            steps.append((t, survival))
        at_risk -= total
    return steps


def quantile_time(steps: list[tuple[float, float]], level: float) -> float | None:
    """The smallest t with S(t) <= level; None when S never falls that far."""
    # A hair of tolerance: 1 - 1/2 products can land a rounding above 0.5.
    return next((t for t, s in steps if s <= level + 1e-12), None)


def survival(observations: Iterable[tuple[float, bool]]) -> Survival:
    """Median and p90 of the Kaplan-Meier curve, with the counts."""
    rows = list(observations)
    steps = kaplan_meier(rows)
    return Survival(
        median=quantile_time(steps, 0.5),
        p90=quantile_time(steps, 0.1),
        n=len(rows),
        censored=sum(1 for _, observed in rows if not observed),
    )


@dataclass(frozen=True, slots=True)
class ShareDifference:
    """first share minus second, on 0..1: Newcombe's hybrid score interval (from the two Wilson
    intervals) and the pooled two-proportion z-test, two-sided."""

    difference: float
    low: float
    high: float
    z: float | None
    p_value: float | None
    confidence: float


def share_difference(
    first: tuple[int, int], second: tuple[int, int], *, confidence: float = 0.95
) -> ShareDifference | None:
    """(successes, n) pairs; None when either n == 0.

    Newcombe (1998, method 10): with p1, p2 and their Wilson bounds (l1, u1), (l2, u2),
    low = d - sqrt((p1 - l1)^2 + (u2 - p2)^2), high = d + sqrt((u1 - p1)^2 + (p2 - l2)^2).
    z = d / sqrt(p(1 - p)(1/n1 + 1/n2)) with the pooled p; z and p_value are None when the pooled
    share is 0 or 1 (no variance: nothing to test).
    """
    z_value(confidence)  # ValueError outside (0, 1); the Wilson bounds carry the level
    (x1, n1), (x2, n2) = first, second
    a = wilson_interval(x1, n1, confidence=confidence)
    b = wilson_interval(x2, n2, confidence=confidence)
    if a is None or b is None:
        return None
    p1, p2 = x1 / n1, x2 / n2
    d = p1 - p2
    low = d - math.sqrt((p1 - a.low) ** 2 + (b.high - p2) ** 2)
    high = d + math.sqrt((a.high - p1) ** 2 + (p2 - b.low) ** 2)
    pooled = (x1 + x2) / (n1 + n2)
    variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    z = d / math.sqrt(variance) if variance > 0 else None
    p_value = None if z is None else min(1.0, 2 * _STANDARD_NORMAL.cdf(-abs(z)))
    return ShareDifference(d, max(-1.0, low), min(1.0, high), z, p_value, confidence)
