"""Pure NPS math: classification, tallies, intervals, tests of change, weights, display rounding,
and response rates with their Wilson interval.

Standard library only, so SQL and services can import the thresholds without extra dependencies;
everything is imported from here (`from app.scoring import Tally`).
"""

from app.scoring.change import Change, Counts, compare
from app.scoring.core import (
    PASSIVE_MIN,
    PROMOTER_MIN,
    RANKS,
    SCORE_MAX,
    SCORE_MIN,
    Category,
    CIMethod,
    Direction,
    Interval,
    Method,
    Precision,
    Tally,
    classify,
    classify_mean,
    confidence_interval,
    precision,
    rises,
    round_half_away,
    z_value,
)
from app.scoring.rates import rate, wilson_interval
from app.scoring.weighted import WeightedTally, compare_weighted, weighted_interval

__all__ = [
    "PASSIVE_MIN",
    "PROMOTER_MIN",
    "RANKS",
    "SCORE_MAX",
    "SCORE_MIN",
    "CIMethod",
    "Category",
    "Change",
    "Counts",
    "Direction",
    "Interval",
    "Method",
    "Precision",
    "Tally",
    "WeightedTally",
    "classify",
    "classify_mean",
    "compare",
    "compare_weighted",
    "confidence_interval",
    "precision",
    "rate",
    "rises",
    "round_half_away",
    "weighted_interval",
    "wilson_interval",
    "z_value",
]
