"""Expected response-rate objects, from hand counts, with the Wilson bounds worked out here from
their definition (never by app.scoring, never from an endpoint's output)."""

import math
from statistics import NormalDist
from typing import Any

import pytest


def wilson_bounds(successes: int, n: int, confidence: float) -> tuple[float, float]:
    """The two proportions P the score test puts exactly z standard errors from p = x/n: the
    roots of (p - P)^2 = z^2 P (1 - P) / n, i.e. of
    (1 + z^2/n) P^2 - (2p + z^2/n) P + p^2 = 0."""
    z = NormalDist().inv_cdf((1 + confidence) / 2)
    p, k = successes / n, z * z / n
    a, b, c = 1 + k, -(2 * p + k), p * p
    root = math.sqrt(b * b - 4 * a * c)
    return (-b - root) / (2 * a), (-b + root) / (2 * a)


def expected_rate(
    invited: int,
    answered: int = 0,
    opened: int = 0,
    *,
    dismissed: int = 0,
    expired: int = 0,
    revoked: int = 0,
    suppressed: int = 0,
    confidence: float = 0.95,
    precision: str | None = None,
) -> dict[str, Any]:
    """A response_rate object; pending is what the outcomes leave of `invited`. `precision`
    defaults to the default thresholds' flag (min_n 5, low_n 30)."""
    pending = invited - answered - dismissed - expired - revoked
    assert pending >= 0
    ci = None
    if invited:
        low, high = wilson_bounds(answered, invited, confidence)
        ci = {
            "low": pytest.approx(low, abs=1e-9),
            "high": pytest.approx(high, abs=1e-9),
            "level": confidence,
            "method": "wilson",
        }
    if precision is None:
        precision = "insufficient" if invited < 5 else "low" if invited < 30 else "ok"
    return {
        "invited": invited,
        "suppressed": suppressed,
        "opened": opened,
        "answered": answered,
        "dismissed": dismissed,
        "expired": expired,
        "revoked": revoked,
        "pending": pending,
        "rate": answered / invited if invited else None,
        "ci": ci,
        "precision": precision,
    }


NOTHING = expected_rate(0)
