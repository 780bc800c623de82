"""Rates of a yes/no outcome (invitations answered of invitations sent) and their Wilson
score interval, on the 0..1 scale."""

from __future__ import annotations

import math

from app.scoring.core import Interval, z_value


def rate(successes: int, n: int) -> float | None:
    """successes / n; None when n == 0 (no invitations is no rate, never 0)."""
    _check(successes, n)
    return successes / n if n else None


def wilson_interval(successes: int, n: int, *, confidence: float = 0.95) -> Interval | None:
    """Wilson's score interval for the proportion p = x/n, within [0, 1]; None when n == 0.

    centre = (p + z^2/(2n)) / (1 + z^2/n), half-width = z/(1 + z^2/n) * sqrt(p(1 - p)/n +
    z^2/(4n^2)). Unlike p +- z*sqrt(p(1 - p)/n) it is never empty at 0 or n successes and
    never leaves [0, 1]: the low end is 0 exactly when x = 0, the high end 1 when x = n.
    """
    z = z_value(confidence)
    _check(successes, n)
    if n == 0:
        return None
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half_width = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # At x = 0 (x = n) the bound is 0 (1) exactly; floats would leave a trace of rounding.
    low = 0.0 if successes == 0 else max(0.0, centre - half_width)
    high = 1.0 if successes == n else min(1.0, centre + half_width)
    return Interval(low, high)


def _check(successes: int, n: int) -> None:
    if not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
