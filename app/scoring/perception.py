"""The staff perception gap's math (pure, standard library only): which prediction counts, the
quadrant of a team's view against the clients', and an author's calibration."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, TypeVar

from app.scoring.core import PASSIVE_MIN

# A side (the team's mean prediction, the clients' mean score) is favourable from here: the
# passive threshold, so "favourable" means "not at a detractor's level".
FAVOURABLE_FROM: float = float(PASSIVE_MIN)


class Quadrant(StrEnum):
    AGREED_STRENGTH = "agreed_strength"
    AGREED_WEAKNESS = "agreed_weakness"
    BLIND_SPOT = "blind_spot"
    UNDERVALUED = "undervalued"


def quadrant(predicted: float, actual: float) -> Quadrant:
    """Both favourable (>= FAVOURABLE_FROM): agreed_strength; neither: agreed_weakness; the team
    favourable where the clients are not: blind_spot; the reverse: undervalued."""
    team, clients = predicted >= FAVOURABLE_FROM, actual >= FAVOURABLE_FROM
    if team and clients:
        return Quadrant.AGREED_STRENGTH
    if not team and not clients:
        return Quadrant.AGREED_WEAKNESS
    return Quadrant.BLIND_SPOT if team else Quadrant.UNDERVALUED


class Stamped(Protocol):
    @property
    def predicted_at(self) -> datetime: ...


T = TypeVar("T", bound=Stamped)


def latest_before(versions: Sequence[T], cutoff: datetime) -> T | None:
    """The latest version made strictly before `cutoff` (no hindsight); None when none was.
    `versions` in the order they were made: of two made at the same instant, the later one."""
    eligible = sorted(
        (v for v in versions if v.predicted_at < cutoff), key=lambda v: v.predicted_at
    )
    return eligible[-1] if eligible else None


@dataclass(frozen=True, slots=True)
class Calibration:
    n: int
    mae: float | None
    bias: float | None


def calibration(pairs: Iterable[tuple[float, float]]) -> Calibration:
    """Over (predicted, actual) pairs: n, mean absolute error mean(|p - a|) and bias
    mean(p - a) (positive: optimistic); both None when n = 0."""
    errors = [p - a for p, a in pairs]
    if not errors:
        return Calibration(0, None, None)
    n = len(errors)
    return Calibration(n, sum(abs(e) for e in errors) / n, sum(errors) / n)
