"""Seeding over HTTP and expected score objects for the settings, methods, trend and compare tests.

Every expectation is built from the seeded data with app.scoring, never from an endpoint's output.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.scoring import (
    CIMethod,
    Interval,
    Tally,
    WeightedTally,
    compare,
    confidence_interval,
    precision,
    weighted_interval,
)
from tests.integration.helpers import error_locs, problem

START = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW = {"from": "2026-01-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}

DEFAULT_ROLE_WEIGHTS = {"decision_maker": 3.0, "influencer": 2.0, "user": 1.0, "other": 1.0}
DEFAULT_JOB_LEVEL_WEIGHTS = {
    "executive": 1.0,
    "director": 1.0,
    "manager": 1.0,
    "individual_contributor": 1.0,
    "other": 1.0,
}
# One score per category, for answers whose exact value does not matter.
CATEGORY_SCORES = (10, 8, 3)

Counts = tuple[int, int, int]  # promoters, passives, detractors
TECHNOLOGY = {"industry": "technology", "low": 30.0, "high": 50.0}
MANUFACTURING = {"industry": "manufacturing", "low": 20.0, "high": 40.0}


def approx(value: float) -> Any:
    return pytest.approx(value, abs=1e-9)


def at(days: float) -> datetime:
    """`days` after 2026-01-01T00:00:00Z."""
    return START + timedelta(days=days)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    """The instant as the service echoes it: RFC 3339 in UTC with `Z`."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# Seeding


@dataclass(frozen=True)
class Answer:
    """One stakeholder's answer; the stakeholder (and its account) are registered inline."""

    stakeholder_id: str
    account_id: str
    score: int
    submitted_at: datetime
    role: str = "other"
    job_level: str = "other"
    department: str | None = None
    survey: str | None = None

    def item(self) -> dict[str, Any]:
        stakeholder: dict[str, Any] = {
            "id": self.stakeholder_id,
            "account_id": self.account_id,
            "role": self.role,
            "job_level": self.job_level,
            # Creates the account when it does not exist yet; an existing one is left unchanged.
            "account": {"name": self.account_id},
        }
        if self.department is not None:
            stakeholder["department"] = self.department
        body: dict[str, Any] = {
            "stakeholder": stakeholder,
            "score": self.score,
            "submitted_at": self.submitted_at.isoformat(),
        }
        if self.survey is not None:
            body["survey"] = self.survey
        return body


def answers_for(
    prefix: str,
    counts: Counts,
    when: datetime,
    *,
    account_id: str = "acme",
    role: str = "other",
    job_level: str = "other",
) -> list[Answer]:
    """P promoters, Pa passives and D detractors, each a new stakeholder, a second apart."""
    scores = [score for score, k in zip(CATEGORY_SCORES, counts, strict=True) for _ in range(k)]
    return [
        Answer(
            f"{prefix}-{i}",
            account_id,
            score,
            when + timedelta(seconds=i),
            role=role,
            job_level=job_level,
        )
        for i, score in enumerate(scores)
    ]


async def put_account(
    client: httpx.AsyncClient,
    account_id: str,
    *,
    industry: str | None = None,
    segment: str | None = None,
    annual_revenue: str | None = None,
) -> None:
    body: dict[str, Any] = {"name": account_id}
    for name, value in (
        ("industry", industry),
        ("segment", segment),
        ("annual_revenue", annual_revenue),
    ):
        if value is not None:
            body[name] = value
    r = await client.put(f"/v1/accounts/{account_id}", json=body)
    assert r.status_code == 201, r.text


async def seed(client: httpx.AsyncClient, answers: Sequence[Answer]) -> list[str]:
    """Store every answer in one batch; the response ids in order."""
    r = await client.post("/v1/responses/batch", json={"responses": [a.item() for a in answers]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["stored"] == len(answers)
    return [result["id"] for result in body["results"]]


async def put_settings(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    r = await client.put("/v1/settings", json=body)
    assert r.status_code == 200, r.text
    settings: dict[str, Any] = r.json()
    return settings


async def get_json(client: httpx.AsyncClient, path: str, **params: str) -> dict[str, Any]:
    r = await client.get(path, params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def report(client: httpx.AsyncClient, path: str = "/v1/nps", **params: str) -> dict[str, Any]:
    """A score endpoint over WINDOW unless the params say otherwise."""
    return await get_json(client, path, **{**WINDOW, **params})


def assert_invalid(r: httpx.Response, *locs: Sequence[str | int]) -> dict[str, Any]:
    """A 422 validation problem; with `locs`, exactly those field locations."""
    body = problem(r, 422)
    assert body["type"] == "/problems/validation-error", body
    if locs:
        assert error_locs(body) == [list(loc) for loc in locs], body
    return body


# Expected values


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


def _raw(t: Tally, min_n: int, low_n: int) -> dict[str, Any]:
    n = t.n
    return {
        "n": n,
        "promoters": t.promoters,
        "passives": t.passives,
        "detractors": t.detractors,
        "promoter_pct": approx(100 * t.promoters / n) if n else None,
        "passive_pct": approx(100 * t.passives / n) if n else None,
        "detractor_pct": approx(100 * t.detractors / n) if n else None,
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
    """The unweighted score object for these counts."""
    t = Tally(promoters, passives, detractors)
    nps = t.nps
    return {
        **_raw(t, min_n, low_n),
        "nps": None if nps is None else approx(nps),
        "ci": interval_read(
            confidence_interval(t, method=ci_method, confidence=confidence),
            confidence=confidence,
            method=ci_method.value,
        ),
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


def expected_change(
    this: Tally, previous: Tally, *, previous_start: str | None, confidence: float = 0.95
) -> dict[str, Any] | None:
    """The change object of `this` minus `previous`, from app.scoring.compare."""
    change = compare(this, previous, confidence=confidence)
    if change is None:
        return None
    return {
        "previous": previous_start,
        "difference": approx(change.difference),
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
    name: str, groups: list[tuple[str | None, Counts]], **options: Any
) -> list[dict[str, Any]]:
    """Groups of a dimension other than industry: their benchmark is null."""
    return [
        {"key": {name: key}, "score": expected_score(*c, **options), "benchmark": None}
        for key, c in groups
    ]


def unknown_benchmark(industry: str | None) -> dict[str, Any]:
    return {"industry": industry, "low": None, "high": None, "position": "unknown"}
