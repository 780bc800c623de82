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
