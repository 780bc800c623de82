"""The seeded B2B workspace the benchmark loads: accounts, stakeholders, two years of responses.

Everything is drawn from `random.Random` seeded with text (stable across runs and Python hash
seeds), so a seed gives the same workspace relative to the moment the run starts.
"""

import importlib
import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.scoring import PASSIVE_MIN, PROMOTER_MIN, SCORE_MAX, SCORE_MIN

SPAN = timedelta(days=730)
BATCH_SIZE = 1000

INDUSTRIES = (
    "technology",
    "professional services",
    "manufacturing",
    "healthcare",
    "financial services",
    "retail",
)
# segment: (share of accounts, median annual revenue in USD)
SEGMENTS = {"enterprise": (0.15, 800e6), "mid-market": (0.35, 60e6), "smb": (0.50, 6e6)}
ROLES = {"decision_maker": 0.10, "influencer": 0.20, "user": 0.65, "other": 0.05}
# Decision makers are happier than the people who use the product every day.
ROLE_OFFSET = {"decision_maker": 0.4, "influencer": 0.1, "user": -0.2, "other": -0.3}
JOB_LEVELS = {
    "decision_maker": {"executive": 0.6, "director": 0.4},
    "influencer": {"director": 0.35, "manager": 0.55, "other": 0.10},
    "user": {"manager": 0.15, "individual_contributor": 0.80, "other": 0.05},
    "other": {"other": 0.5, "individual_contributor": 0.3, "manager": 0.2},
}
DEPARTMENTS = (
    "Engineering",
    "IT",
    "Operations",
    "Procurement",
    "Finance",
    "Customer Support",
    "Sales",
    "Marketing",
    "Legal",
)
COMMENTS = {
    "promoter": (
        "Support is quick and knows the product",
        "Great product, the team loves it",
        "Onboarding was smooth",
        "Reliable, we would recommend it",
    ),
    "passive": (
        "Does the job, pricing is a bit high",
        "Good, but the reporting could be better",
        "Fine overall; some features are missing",
    ),
    "detractor": (
        "Support takes days to answer",
        "Too many outages this quarter",
        "Hard to use and the renewal price went up",
        "We are evaluating alternatives",
    ),
}


def _dumps() -> Callable[[Any], bytes]:
    try:
        orjson = importlib.import_module("orjson")
    except ImportError:
        return lambda value: json.dumps(value, separators=(",", ":")).encode()
    dumps: Callable[[Any], bytes] = orjson.dumps
    return dumps


dumps = _dumps()


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _department(rng: random.Random) -> str:
    """Free text as CRMs hold it: mostly clean, sometimes cased or padded differently."""
    name = rng.choice(DEPARTMENTS)
    variant = rng.random()
    if variant < 0.08:
        return name.lower()
    if variant < 0.12:
        return name.upper()
    if variant < 0.20:
        return f" {name.lower()} "
    return name


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    name: str
    industry: str
    segment: str
    annual_revenue: str | None
    baseline: float  # the account's mood, in score points around the workspace mean
    drift: float  # score points per year, positive or negative

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "industry": self.industry,
            "segment": self.segment,
            "attributes": {"crm_owner": f"owner-{int(self.id[-3:]) % 17:02d}"},
        }
        if self.annual_revenue is not None:
            body |= {"annual_revenue": self.annual_revenue, "currency": "USD"}
        return body


@dataclass(frozen=True, slots=True)
class Stakeholder:
    id: str
    account: Account
    role: str
    job_level: str
    department: str
    offset: float

    def body(self) -> dict[str, Any]:
        return {
            "account_id": self.account.id,
            "name": f"Person {self.id.split('@', 1)[0]}",
            "email": self.id,
            "role": self.role,
            "job_level": self.job_level,
            "department": self.department,
        }


@dataclass(frozen=True, slots=True)
class World:
    accounts: list[Account]
    stakeholders: list[Stakeholder]
    activity: list[float]  # cumulative weights: how often each stakeholder answers


def _sizes(rng: random.Random, accounts: int, stakeholders: int) -> list[int]:
    """Stakeholders per account: skewed around the mean, 2..40, adding up exactly."""
    low, high = (2, 40) if stakeholders >= 2 * accounts else (1, 40)
    if not accounts <= stakeholders <= high * accounts:
        raise ValueError(f"{stakeholders} stakeholders cannot fill {accounts} accounts")
    mean = stakeholders / accounts
    sizes = [
        min(high, max(low, round(mean * rng.lognormvariate(-0.18, 0.6)))) for _ in range(accounts)
    ]
    while (diff := stakeholders - sum(sizes)) != 0:
        i = rng.randrange(accounts)
        step = 1 if diff > 0 else -1
        if low <= sizes[i] + step <= high:
            sizes[i] += step
    return sizes


def build_world(seed: str, *, accounts: int, stakeholders: int) -> World:
    rng = random.Random(f"{seed}/world")
    segment_names = list(SEGMENTS)
    segment_shares = [share for share, _ in SEGMENTS.values()]
    built: list[Account] = []
    for i in range(1, accounts + 1):
        segment = rng.choices(segment_names, weights=segment_shares)[0]
        revenue = SEGMENTS[segment][1] * rng.lognormvariate(0, 0.8)
        kind = rng.random()
        drift = rng.gauss(0, 0.4)
        if kind < 0.08:  # souring relationships: the accounts an at-risk view should find
            drift = -rng.uniform(1.0, 2.0)
        elif kind < 0.13:
            drift = rng.uniform(0.8, 1.5)
        built.append(
            Account(
                id=f"acct-{i:05d}",
                name=f"Account {i:05d}",
                industry=rng.choice(INDUSTRIES),
                segment=segment,
                annual_revenue=None if rng.random() < 0.05 else f"{revenue:.2f}",
                baseline=rng.gauss(0, 0.8),
                drift=drift,
            )
        )
    people: list[Stakeholder] = []
    activity: list[float] = []
    total = 0.0
    for account, size in zip(built, _sizes(rng, accounts, stakeholders), strict=True):
        for _ in range(size):
            role = _pick(rng, ROLES)
            people.append(
                Stakeholder(
                    id=f"p{len(people) + 1:06d}@{account.id}.example",
                    account=account,
                    role=role,
                    job_level=_pick(rng, JOB_LEVELS[role]),
                    department=_department(rng),
                    offset=rng.gauss(0, 0.6),
                )
            )
            # Users file support tickets and answer far more often than executives.
            total += rng.lognormvariate(0, 0.7) * (1.5 if role == "user" else 1.0)
            activity.append(total)
    return World(built, people, activity)


@dataclass(frozen=True, slots=True)
class Item:
    send_at: float  # when the CRM sends it (epoch seconds): the order it is posted in
    body: bytes


def _score(rng: random.Random, person: Stakeholder, years: float, survey: str) -> int:
    account = person.account
    mean = 8.3 + account.baseline + account.drift * years + ROLE_OFFSET[person.role]
    mean += person.offset - (0.4 if survey == "support-ticket" else 0.0)
    return min(SCORE_MAX, max(SCORE_MIN, round(rng.gauss(mean, 1.7))))


def _category(score: int) -> str:
    return (
        "promoter" if score >= PROMOTER_MIN else "passive" if score >= PASSIVE_MIN else "detractor"
    )


def _stamp(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def generate_responses(
    world: World, seed: str, *, count: int, end: datetime, prefix: str = "resp-"
) -> list[Item]:
    """`count` responses over the two years before `end`, in chronological order of index.

    Volume grows over time, each account has its own level and drift, roles their offsets;
    ~20% carry a comment, ~50% driver ratings, ~3% are sent weeks after they were given.
    """
    rng = random.Random(f"{seed}/responses")
    start = end - SPAN
    seconds = SPAN.total_seconds()
    growth = 1.0  # the last day sees twice the volume of the first
    # Inverse CDF of a density rising linearly by `growth`, so later months are busier.
    fractions = sorted(
        (math.sqrt(1 + growth * (2 + growth) * u) - 1) / growth
        for u in (rng.random() for _ in range(count))
    )
    who = rng.choices(world.stakeholders, cum_weights=world.activity, k=count)
    items: list[Item] = []
    for index, (fraction, person) in enumerate(zip(fractions, who, strict=True)):
        at = start + timedelta(seconds=fraction * seconds)
        kind = rng.random()
        if kind < 0.55:
            survey, channel = f"relationship-{at.year}-q{(at.month - 1) // 3 + 1}", "email"
        elif kind < 0.90:
            survey, channel = "support-ticket", rng.choice(("api", "widget"))
        else:
            survey, channel = "onboarding", "widget"
        score = _score(rng, person, 2 * fraction - 1, survey)
        body: dict[str, Any] = {
            "stakeholder_id": person.id,
            "score": score,
            "submitted_at": _stamp(at),
            "survey": survey,
            "channel": channel,
            "external_id": f"{prefix}{index + 1:07d}",
        }
        if rng.random() < 0.20:
            body["comment"] = rng.choice(COMMENTS[_category(score)])
        if rng.random() < 0.50:
            rating = score / 2.2 + 0.5
            drivers = {
                "support": min(5, max(1, round(rng.gauss(rating, 0.8)))),
                "product": min(5, max(1, round(rng.gauss(rating, 0.8)))),
            }
            if rng.random() < 0.3:
                drivers["onboarding"] = min(5, max(1, round(rng.gauss(rating, 1.0))))
            body["attributes"] = drivers
        send_at = at.timestamp()
        if rng.random() < 0.03:  # late arrivals: an older answer synced days or weeks later
            send_at += rng.uniform(1, 45) * 86400
        items.append(Item(send_at, dumps(body)))
    return items


def split_checkpoint(items: Sequence[Item], checkpoint: int) -> tuple[list[Item], list[Item]]:
    """An evenly spaced sample of `checkpoint` items first (the same two years, a tenth of the
    volume), the rest after, so the query set can be timed on both sizes of one workspace."""
    if not 0 < checkpoint < len(items):
        return list(items), []
    first_indices = {j * len(items) // checkpoint for j in range(checkpoint)}
    first = [item for i, item in enumerate(items) if i in first_indices]
    rest = [item for i, item in enumerate(items) if i not in first_indices]
    return first, rest


def batch_bodies(items: Sequence[Item], size: int = BATCH_SIZE) -> list[tuple[int, bytes]]:
    """Request bodies for POST /v1/responses/batch in sending order, with their item counts."""
    ordered = sorted(items, key=lambda item: item.send_at)
    bodies: list[tuple[int, bytes]] = []
    for i in range(0, len(ordered), size):
        chunk = ordered[i : i + size]
        bodies.append((len(chunk), b'{"responses":[' + b",".join(c.body for c in chunk) + b"]}"))
    return bodies


def single_bodies(
    world: World, seed: str, *, count: int, end: datetime, prefix: str = "single-"
) -> list[bytes]:
    """Bodies for POST /v1/responses: recent answers from the widget, one at a time."""
    rng = random.Random(f"{seed}/single")
    bodies: list[bytes] = []
    for i in range(count):
        person = rng.choice(world.stakeholders)
        at = end - timedelta(seconds=rng.uniform(0, 30 * 86400))
        score = _score(rng, person, 1.0, "support-ticket")
        body: dict[str, Any] = {
            "stakeholder_id": person.id,
            "score": score,
            "submitted_at": _stamp(at),
            "survey": "support-ticket",
            "channel": "widget",
            "external_id": f"{prefix}{i + 1:07d}",
        }
        if rng.random() < 0.2:
            body["comment"] = rng.choice(COMMENTS[_category(score)])
        bodies.append(dumps(body))
    return bodies
