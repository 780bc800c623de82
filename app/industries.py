"""Industry NPS ranges and where a score stands against them (pure, standard library only)."""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Range:
    low: float
    high: float


# Typical B2B ranges from the background articles; a workspace overrides them in its settings.
BUILT_IN: dict[str, Range] = {
    "manufacturing": Range(20.0, 40.0),
    "professional services": Range(40.0, 60.0),
    "technology": Range(30.0, 50.0),
}


class Position(StrEnum):
    BELOW = "below"
    WITHIN = "within"
    ABOVE = "above"
    UNKNOWN = "unknown"


_SEPARATORS = re.compile(r"[\s_-]+")


def normalise_industry(name: str) -> str:
    """'Professional_Services ' and 'professional-services' name the same industry."""
    return _SEPARATORS.sub(" ", name).strip().lower()


def effective_table(overrides: Mapping[str, Range | None]) -> dict[str, Range]:
    """The built-in table with a workspace's overrides; an override of None removes an entry."""
    table = dict(BUILT_IN)
    for name, entry in overrides.items():
        key = normalise_industry(name)
        if entry is None:
            table.pop(key, None)
        else:
            table[key] = entry
    return dict(sorted(table.items()))


def position(nps: float | None, bounds: Range | None) -> Position:
    """below when nps < low, above when nps > high, within otherwise; unknown without both."""
    if nps is None or bounds is None:
        return Position.UNKNOWN
    if nps < bounds.low:
        return Position.BELOW
    if nps > bounds.high:
        return Position.ABOVE
    return Position.WITHIN


class RangeSource(StrEnum):
    INDUSTRY_ROLE = "industry_role"
    ROLE = "role"
    INDUSTRY = "industry"


@dataclass(frozen=True, slots=True)
class RoleTable:
    """A workspace's role ranges: across industries, and per industry (normalised names)."""

    by_role: Mapping[str, Range]
    by_industry_role: Mapping[str, Mapping[str, Range]]


def role_range(
    role: str | None,
    industry: str | None,
    roles: RoleTable,
    industries: Mapping[str, Range],
) -> tuple[Range | None, RangeSource | None]:
    """The range a role's score is read against, most specific first: the role's range within
    the industry, else the role's range across industries, else the industry's range (every
    role alike); (None, None) when none applies (no role, or no range set)."""
    if role is None:
        return None, None
    key = None if industry is None else normalise_industry(industry)
    if key is not None:
        bounds = roles.by_industry_role.get(key, {}).get(role)
        if bounds is not None:
            return bounds, RangeSource.INDUSTRY_ROLE
    if (bounds := roles.by_role.get(role)) is not None:
        return bounds, RangeSource.ROLE
    if key is not None and (bounds := industries.get(key)) is not None:
        return bounds, RangeSource.INDUSTRY
    return None, None
