"""Expected score objects, built from the seeded data with app.scoring (or from hand counts),
never from an endpoint's output."""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import pytest

from app.scoring import (
    Change,
    CIMethod,
    Interval,
    Tally,
    WeightedTally,
    compare,
    compare_weighted,
    confidence_interval,
    precision,
    weighted_interval,
)
from tests.support.api import Answer

DEFAULT_ROLE_WEIGHTS = {"decision_maker": 3.0, "influencer": 2.0, "user": 1.0, "other": 1.0}
DEFAULT_JOB_LEVEL_WEIGHTS = {
    "executive": 1.0,
    "director": 1.0,
    "manager": 1.0,
    "individual_contributor": 1.0,
    "other": 1.0,
}

Counts = tuple[int, int, int]  # promoters, passives, detractors
TECHNOLOGY = {"industry": "technology", "low": 30.0, "high": 50.0}
MANUFACTURING = {"industry": "manufacturing", "low": 20.0, "high": 40.0}


def approx(value: float) -> Any:
    return pytest.approx(value, abs=1e-9)


def counts(score: dict[str, Any]) -> Counts:
    return (score["promoters"], score["passives"], score["detractors"])


def tally_of(scores: Iterable[int]) -> Tally:
    return Tally.from_scores(scores)


def counted(
    answers: Iterable[Answer], start: datetime, end: datetime, *, latest: bool = True
) -> list[Answer]:
    """The answers in [start, end); with `latest`, each stakeholder's latest one there."""
    inside = sorted(
        (a for a in answers if start <= a.submitted_at < end), key=lambda a: a.submitted_at
    )
    if not latest:
        return inside
    return list({a.stakeholder_id: a for a in inside}.values())


def interval_read(
    interval: Interval | None, *, confidence: float, method: str
) -> dict[str, Any] | None:
    if interval is None:
        return None
    return {
        "low": approx(interval.low),
        "high": approx(interval.high),
        "level": confidence,
        "method": method,
    }


def _raw(t: Tally, min_n: int, low_n: int, *, exact: bool = False) -> dict[str, Any]:
    n = t.n
    near = (lambda v: v) if exact else approx
    return {
        "n": n,
        "promoters": t.promoters,
        "passives": t.passives,
        "detractors": t.detractors,
        "promoter_pct": near(100 * t.promoters / n) if n else None,
        "passive_pct": near(100 * t.passives / n) if n else None,
        "detractor_pct": near(100 * t.detractors / n) if n else None,
        "precision": precision(n, min_n=min_n, low_n=low_n).value,
    }


def expected_score(
    promoters: int,
    passives: int,
    detractors: int,
    *,
    ci_method: CIMethod = CIMethod.ADJUSTED_WALD,
    confidence: float = 0.95,
    min_n: int = 5,
    low_n: int = 30,
) -> dict[str, Any]:
    """The unweighted score object for these counts, to the last bit: the service counts and
    then computes with app.scoring, as this does."""
    t = Tally(promoters, passives, detractors)
    interval = confidence_interval(t, method=ci_method, confidence=confidence)
    return {
        **_raw(t, min_n, low_n, exact=True),
        "nps": t.nps,
        "ci": None
        if interval is None
        else {
            "low": interval.low,
            "high": interval.high,
            "level": confidence,
            "method": ci_method.value,
        },
        "n_effective": float(t.n),
        "unweighted": None,
    }


def weighted_score(
    pairs: Sequence[tuple[int, float]],
    *,
    raw: Tally | None = None,
    unweighted: Tally | None = None,
    ci_method: CIMethod = CIMethod.ADJUSTED_WALD,
    confidence: float = 0.95,
    min_n: int = 5,
    low_n: int = 30,
) -> dict[str, Any]:
    """The score object of a weighted method over (score, weight) pairs.

    `raw` gives the counts (default: the pairs' own), `unweighted` the tally of the plain
    figures (default: `raw`).
    """
    w = WeightedTally.from_pairs(pairs)
    raw = raw if raw is not None else Tally.from_scores(s for s, _ in pairs)
    plain = unweighted if unweighted is not None else raw
    nps, plain_nps = w.nps, plain.nps
    return {
        **_raw(raw, min_n, low_n),
        "nps": None if nps is None else approx(nps),
        "ci": interval_read(
            weighted_interval(w, confidence=confidence),
            confidence=confidence,
            method=CIMethod.ADJUSTED_WALD.value,
        ),
        "n_effective": approx(w.n_effective),
        "unweighted": {
            "nps": None if plain_nps is None else approx(plain_nps),
            "ci": interval_read(
                confidence_interval(plain, method=ci_method, confidence=confidence),
                confidence=confidence,
                method=ci_method.value,
            ),
        },
    }


def _centre(t: Tally) -> float:
    """The adjusted-Wald centre in points, by hand: 100 * (P + 3/4 - D - 3/4) / (n + 3)."""
    return 100 * (t.promoters - t.detractors) / (t.n + 3)


def expected_change(
    this: Tally, previous: Tally, *, previous_start: str | None, confidence: float = 0.95
) -> dict[str, Any] | None:
    """The change object of `this` minus `previous`: the plain difference of the two scores and
    of the adjusted centres by hand, the interval and the test from app.scoring.compare."""
    change = compare(this, previous, confidence=confidence)
    if change is None or this.nps is None or previous.nps is None:
        return None
    return _change_read(
        change,
        difference=this.nps - previous.nps,
        adjusted_difference=_centre(this) - _centre(previous),
        previous_start=previous_start,
        confidence=confidence,
    )


def expected_weighted_change(
    this: Sequence[tuple[int, float]],
    previous: Sequence[tuple[int, float]],
    *,
    previous_start: str | None,
    confidence: float = 0.95,
) -> dict[str, Any] | None:
    """The change object of two weighted scores over (score, weight) pairs: the difference of
    the weighted scores, the test from app.scoring.compare_weighted (on pseudo-counts)."""
    first, second = WeightedTally.from_pairs(this), WeightedTally.from_pairs(previous)
    change = compare_weighted(first, second, confidence=confidence)
    if change is None or first.nps is None or second.nps is None:
        return None
    return _change_read(
        change,
        difference=first.nps - second.nps,
        adjusted_difference=change.adjusted_difference,
        previous_start=previous_start,
        confidence=confidence,
    )


def _change_read(
    change: Change,
    *,
    difference: float,
    adjusted_difference: float,
    previous_start: str | None,
    confidence: float,
) -> dict[str, Any]:
    return {
        "previous": previous_start,
        "difference": approx(difference),
        "adjusted_difference": approx(adjusted_difference),
        "ci": {
            "low": approx(change.low),
            "high": approx(change.high),
            "level": confidence,
            "method": "adjusted_wald",
        },
        "z": approx(change.z),
        "p_value": approx(change.p_value),
        "significant": change.significant,
    }


def role_weighted_echo(
    role: dict[str, float] | None = None, job_level: dict[str, float] | None = None
) -> dict[str, Any]:
    return {
        "role": {**DEFAULT_ROLE_WEIGHTS, **(role or {})},
        "job_level": {**DEFAULT_JOB_LEVEL_WEIGHTS, **(job_level or {})},
        "account": None,
        "accounts_without_revenue": None,
    }


def expected_groups(
    name: str,
    groups: list[tuple[str | None, Counts]],
    profiles: dict[str, dict[str, Any]] | None = None,
    *,
    industry: str | None = None,
    **options: Any,
) -> list[dict[str, Any]]:
    """Groups of a dimension; groups by industry stand against the benchmark table, which has
    none of the industries these tests use, others have a null benchmark. Groups by account
    carry the account's profile (`profiles`, default account_profile(key)) and its standing
    against the account's industry. Groups by role stand against no range (no role ranges
    set: `industry` is the industry they were read in, the filter's or the account's)."""
    expected = []
    for key, c in groups:
        group: dict[str, Any] = {"key": {name: key}, "score": expected_score(*c, **options)}
        account: dict[str, Any] | None = None
        benchmark: dict[str, Any] | None = None
        if name == "industry":
            benchmark = unknown_benchmark(key)
        if name == "account_id":
            assert key is not None
            account = (profiles or {}).get(key) or account_profile(key)
            benchmark = unknown_benchmark(account["industry"])
        if name == "role":
            benchmark = unknown_role_benchmark(key, industry)
        expected.append(group | {"account": account, "benchmark": benchmark})
    return expected


def unknown_role_benchmark(role: str | None, industry: str | None = None) -> dict[str, Any]:
    """A role group's standing when no range applies."""
    return {
        "industry": industry,
        "low": None,
        "high": None,
        "position": "unknown",
        "role": role,
        "source": None,
    }


def account_profile(
    name: str,
    *,
    segment: str | None = None,
    industry: str | None = None,
    annual_revenue: str | None = None,
    currency: str | None = None,
) -> dict[str, Any]:
    """An account as a group_by=account group shows it."""
    return {
        "name": name,
        "segment": segment,
        "industry": industry,
        "annual_revenue": annual_revenue,
        "currency": currency,
    }


def unknown_benchmark(industry: str | None) -> dict[str, Any]:
    return {"industry": industry, "low": None, "high": None, "position": "unknown"}
