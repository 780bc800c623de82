"""Weighted NPS (role weights inside an account, revenue across accounts) with Kish's n_eff."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from app.scoring.change import Change, Counts, two_sample_test
from app.scoring.core import Category, Interval, _adjusted_wald_interval, classify, z_value


@dataclass(frozen=True, slots=True)
class WeightedTally:
    promoters: float = 0.0
    passives: float = 0.0
    detractors: float = 0.0
    sum_sq: float = 0.0

    @property
    def total(self) -> float:
        """W = Wp + Wpa + Wd."""
        return self.promoters + self.passives + self.detractors

    @property
    def nps(self) -> float | None:
        """100 * (Wp - Wd) / W; None when W == 0."""
        total = self.total
        if total == 0:
            return None
        return 100 * (self.promoters - self.detractors) / total

    @property
    def n_effective(self) -> float:
        """Kish effective sample size W^2 / sum(w^2); 0.0 when empty."""
        if self.sum_sq == 0:
            return 0.0
        return self.total**2 / self.sum_sq

    def pseudo_counts(self) -> Counts:
        """(P*, D*, n*) = (n_eff*Wp/W, n_eff*Wd/W, n_eff): what the interval and the test use."""
        total = self.total
        if total == 0:
            return (0.0, 0.0, 0.0)
        n_effective = self.n_effective
        return (
            n_effective * self.promoters / total,
            n_effective * self.detractors / total,
            n_effective,
        )

    def __add__(self, other: WeightedTally) -> WeightedTally:
        return WeightedTally(
            self.promoters + other.promoters,
            self.passives + other.passives,
            self.detractors + other.detractors,
            self.sum_sq + other.sum_sq,
        )

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[int, float]]) -> WeightedTally:
        """Sums of weights per category and of squared weights from (score, weight) pairs.

        A weight must be a finite number > 0 (else ValueError); no pairs gives the empty tally.
        """
        sums: dict[Category, list[float]] = {category: [] for category in Category}
        squares: list[float] = []
        for score, weight in pairs:
            category = classify(score)
            # The chained comparison also rejects NaN.
            if (
                isinstance(weight, bool)
                or not isinstance(weight, int | float)
                or not 0 < weight < math.inf
            ):
                raise ValueError(f"weight must be a finite number > 0, got {weight!r}")
            sums[category].append(weight)
            squares.append(weight * weight)
        # fsum keeps integer-valued weights exact, so all-ones weights reproduce the plain tally.
        return cls(
            promoters=math.fsum(sums[Category.PROMOTER]),
            passives=math.fsum(sums[Category.PASSIVE]),
            detractors=math.fsum(sums[Category.DETRACTOR]),
            sum_sq=math.fsum(squares),
        )


def weighted_interval(w: WeightedTally, *, confidence: float = 0.95) -> Interval | None:
    """Adjusted-Wald interval on pseudo-counts P* = n_eff*Wp/W, D* = n_eff*Wd/W, n* = n_eff.

    In NPS points, clipped to [-100, 100]; None when the tally is empty.
    """
    z = z_value(confidence)
    if w.total == 0:
        return None
    return _adjusted_wald_interval(*w.pseudo_counts(), z)


def compare_weighted(
    first: WeightedTally, second: WeightedTally, *, confidence: float = 0.95
) -> Change | None:
    """first minus second of weighted scores; None when either is empty.

    difference = NPS_w1 - NPS_w2 (the displayed weighted scores); the test and its interval are
    the adjusted-Wald ones on each side's pseudo-counts (n_eff*Wp/W, n_eff*Wd/W, n_eff).
    """
    z_value(confidence)
    first_nps, second_nps = first.nps, second.nps
    if first_nps is None or second_nps is None:
        return None
    return two_sample_test(
        first.pseudo_counts(),
        second.pseudo_counts(),
        difference=first_nps - second_nps,
        confidence=confidence,
    )
