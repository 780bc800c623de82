"""Classification, tallies, NPS, confidence intervals, precision and display rounding.

Proportions are worked on the -1..1 scale internally and reported in NPS points (-100..100).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal
from enum import StrEnum
from statistics import NormalDist

PROMOTER_MIN: int = 9
PASSIVE_MIN: int = 7
SCORE_MIN: int = 0
SCORE_MAX: int = 10

_STANDARD_NORMAL = NormalDist()
_NPS_BOUND = 100.0
_CHANGE_BOUND = 200.0
# Bisection halves a bracket of width <= 2; 100 halvings reach float resolution with room to spare.
_BISECTION_STEPS = 100


class Category(StrEnum):
    PROMOTER = "promoter"
    PASSIVE = "passive"
    DETRACTOR = "detractor"


class CIMethod(StrEnum):
    ADJUSTED_WALD = "adjusted_wald"
    SCORE = "score"
    WALD = "wald"


class Precision(StrEnum):
    INSUFFICIENT = "insufficient"
    LOW = "low"
    OK = "ok"


class Method(StrEnum):
    """How responses are counted; docs/scoring.md in the repository defines each."""

    RESPONDENT = "respondent"
    LATEST_PER_STAKEHOLDER = "latest_per_stakeholder"
    ROLE_WEIGHTED = "role_weighted"
    DECISION_MAKER_FIRST = "decision_maker_first"
    ACCOUNT_AS_UNIT = "account_as_unit"


def classify(score: int) -> Category:
    """Promoter for 9-10, passive for 7-8, detractor for 0-6; anything else raises ValueError."""
    # bool is an int subclass, but `true` is not a score: reject it instead of coercing.
    if isinstance(score, bool) or not isinstance(score, int) or not SCORE_MIN <= score <= SCORE_MAX:
        raise ValueError(f"score must be an integer {SCORE_MIN}-{SCORE_MAX}, got {score!r}")
    if score >= PROMOTER_MIN:
        return Category.PROMOTER
    if score >= PASSIVE_MIN:
        return Category.PASSIVE
    return Category.DETRACTOR


def classify_mean(mean: float) -> Category:
    """An account's mean score under account_as_unit, with the same thresholds: 8.5 is passive."""
    if mean >= PROMOTER_MIN:
        return Category.PROMOTER
    if mean >= PASSIVE_MIN:
        return Category.PASSIVE
    return Category.DETRACTOR


# Categories from low to high: the order of transitions and the meaning of "up".
RANKS: tuple[Category, ...] = (Category.DETRACTOR, Category.PASSIVE, Category.PROMOTER)


class Direction(StrEnum):
    """Which way a stakeholder's answer moved from their previous one's category."""

    UP = "up"
    DOWN = "down"


def rises(before: Category, after: Category) -> bool:
    """True when `after` ranks above `before` (detractor < passive < promoter)."""
    return RANKS.index(after) > RANKS.index(before)


@dataclass(frozen=True, slots=True)
class Tally:
    promoters: int = 0
    passives: int = 0
    detractors: int = 0

    def __post_init__(self) -> None:
        if min(self.promoters, self.passives, self.detractors) < 0:
            raise ValueError(f"counts must be non-negative: {self!r}")

    @property
    def n(self) -> int:
        """P + Pa + D."""
        return self.promoters + self.passives + self.detractors

    @property
    def nps(self) -> float | None:
        """100 * (P - D) / n; None when n == 0 (never 0)."""
        n = self.n
        if n == 0:
            return None
        return 100 * (self.promoters - self.detractors) / n

    @classmethod
    def from_scores(cls, scores: Iterable[int]) -> Tally:
        """Counts per category of 0-10 scores; an empty iterable gives the empty tally."""
        counts = dict.fromkeys(Category, 0)
        for score in scores:
            counts[classify(score)] += 1
        return cls(counts[Category.PROMOTER], counts[Category.PASSIVE], counts[Category.DETRACTOR])

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.promoters + other.promoters,
            self.passives + other.passives,
            self.detractors + other.detractors,
        )


@dataclass(frozen=True, slots=True)
class Interval:
    low: float
    high: float


@functools.lru_cache(maxsize=64)  # one level per request, thousands of intervals
def z_value(confidence: float) -> float:
    """Two-sided normal quantile Phi^-1((1 + confidence) / 2); ValueError outside (0, 1)."""
    if isinstance(confidence, bool) or not 0 < confidence < 1:  # `not` also catches NaN
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    return _STANDARD_NORMAL.inv_cdf((1 + confidence) / 2)


@dataclass(frozen=True, slots=True)
class _Adjusted:
    centre: float
    variance: float
    n_adjusted: float


def _adjusted_wald(promoters: float, detractors: float, n: float) -> _Adjusted:
    # Counts may be fractional (weighted pseudo-counts), so this works on floats throughout.
    n_adjusted = n + 3
    p_promoter = (promoters + 0.75) / n_adjusted
    p_detractor = (detractors + 0.75) / n_adjusted
    centre = p_promoter - p_detractor
    variance = p_promoter + p_detractor - centre * centre
    return _Adjusted(centre, variance, n_adjusted)


def _clip(value: float, bound: float) -> float:
    return float(min(bound, max(-bound, value)))


def _points(centre: float, half_width: float) -> Interval:
    return Interval(
        _clip(100 * (centre - half_width), _NPS_BOUND),
        _clip(100 * (centre + half_width), _NPS_BOUND),
    )


def _adjusted_wald_interval(promoters: float, detractors: float, n: float, z: float) -> Interval:
    adjusted = _adjusted_wald(promoters, detractors, n)
    return _points(adjusted.centre, z * math.sqrt(adjusted.variance / adjusted.n_adjusted))


def _wald_interval(t: Tally, z: float) -> Interval:
    n = t.n
    p_promoter = t.promoters / n
    p_detractor = t.detractors / n
    estimate = p_promoter - p_detractor
    # Rounding can push an exactly-zero variance (one category only) a hair below zero.
    variance = max(0.0, p_promoter + p_detractor - estimate * estimate)
    return _points(estimate, z * math.sqrt(variance / n))


def _tango_z(delta: float, promoters: int, detractors: int, n: int) -> float:
    a = 2 * n
    b = -detractors - promoters + (2 * n - promoters + detractors) * delta
    c = -detractors * delta * (1 - delta)
    q = (math.sqrt(max(0.0, b * b - 4 * a * c)) - b) / (2 * a)
    variance = n * (2 * q + delta * (1 - delta))
    numerator = promoters - detractors - n * delta
    # The variance vanishes at delta = +-1; the statistic then runs off to +-infinity.
    if variance <= 0:
        return math.copysign(math.inf, numerator) if numerator else 0.0
    return numerator / math.sqrt(variance)


def _bisect(inside: float, outside: float, beyond: Callable[[float], bool]) -> float:
    # Keeps `inside` on the accepted side, so the bound never crosses the point estimate.
    for _ in range(_BISECTION_STEPS):
        middle = (inside + outside) / 2
        if beyond(middle):
            outside = middle
        else:
            inside = middle
    return inside


def _score_interval(t: Tally, z: float) -> Interval:
    promoters, detractors, n = t.promoters, t.detractors, t.n
    estimate = (promoters - detractors) / n

    def statistic(delta: float) -> float:
        return _tango_z(delta, promoters, detractors, n)

    # Z decreases in delta and is 0 at the estimate, so each bound is a single crossing;
    # Z is 0/0 at delta = -1 when D = n (and at 1 when P = n), where the spec fixes the bound.
    low = -1.0 if detractors == n else _bisect(estimate, -1.0, lambda d: statistic(d) > z)
    high = 1.0 if promoters == n else _bisect(estimate, 1.0, lambda d: statistic(d) < -z)
    return Interval(100 * low, 100 * high)


def confidence_interval(
    t: Tally, *, method: CIMethod = CIMethod.ADJUSTED_WALD, confidence: float = 0.95
) -> Interval | None:
    """Interval for the NPS in points, clipped to [-100, 100]; None when n == 0.

    adjusted_wald: n' = n + 3, p'p = (P + 3/4)/n', p'd = (D + 3/4)/n', c = p'p - p'd,
    c +- z*sqrt((p'p + p'd - c^2)/n'). score: Tango's interval, {Delta : |Z(Delta)| <= z}.
    wald: NPS +- z*sqrt((pp + pd - (pp - pd)^2)/n).
    """
    z = z_value(confidence)
    if t.n == 0:
        return None
    match CIMethod(method):
        case CIMethod.ADJUSTED_WALD:
            return _adjusted_wald_interval(t.promoters, t.detractors, t.n, z)
        case CIMethod.SCORE:
            return _score_interval(t, z)
        case CIMethod.WALD:
            return _wald_interval(t, z)


def precision(n: float, *, min_n: int = 5, low_n: int = 30) -> Precision:
    """insufficient when n < min_n, low when n < low_n, else ok; n = 0 is insufficient."""
    if n < min_n:
        return Precision.INSUFFICIENT
    if n < low_n:
        return Precision.LOW
    return Precision.OK


def round_half_away(x: float, ndigits: int = 0) -> float:
    """Display rounding to ndigits, ties away from zero (2.5 -> 3, -2.5 -> -3); NaN/inf as is."""
    if not math.isfinite(x):
        return x
    # Decimal(repr(x)) rounds the number as it is displayed: 0.125 -> 0.13 and 2.675 -> 2.68,
    # where the binary value 2.67499999... would round down.
    quantum = Decimal(1).scaleb(-ndigits)
    digits = len(str(int(abs(x)))) + max(ndigits, 0) + 2
    rounded = Decimal(repr(x)).quantize(
        quantum, rounding=ROUND_HALF_UP, context=Context(prec=digits)
    )
    # + 0.0 turns -0.0 into 0.0 so nothing displays as "-0".
    return float(rounded) + 0.0
