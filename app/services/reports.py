"""Score objects, breakdowns, changes and benchmark standings from counted cells."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.industries import Range, normalise_industry, position
from app.schemas import GroupRead, IntervalRead, ScoreRead
from app.schemas.scores import BenchmarkStanding, ChangeRead, UnweightedRead
from app.scoring import (
    CIMethod,
    compare,
    compare_counts,
    confidence_interval,
    precision,
    weighted_interval,
)
from app.services.cells import Cell
from app.services.nps import Dimension, column_name


@dataclass(frozen=True, slots=True)
class ScoreOptions:
    ci_method: CIMethod = CIMethod.ADJUSTED_WALD
    confidence: float = 0.95
    min_n: int = 5
    low_n: int = 30


# Score objects are built with model_construct: every value comes from the scoring code, and a
# breakdown by account builds thousands of them per request.


def _interval(low: float, high: float, options: ScoreOptions, method: CIMethod) -> IntervalRead:
    return IntervalRead.model_construct(low=low, high=high, level=options.confidence, method=method)


def score_read(cell: Cell, options: ScoreOptions) -> ScoreRead:
    """Raw counts always; under a weighted method nps, ci and n_effective are the weighted ones."""
    tally = cell.tally
    n = tally.n
    plain = confidence_interval(tally, method=options.ci_method, confidence=options.confidence)
    plain_read = (
        None if plain is None else _interval(plain.low, plain.high, options, options.ci_method)
    )

    def pct(count: int) -> float | None:
        return 100.0 * count / n if n else None

    nps, ci, n_effective, unweighted = tally.nps, plain_read, float(n), None
    if cell.weighted is not None:
        weighted = weighted_interval(cell.weighted, confidence=options.confidence)
        nps = cell.weighted.nps
        ci = None
        if weighted is not None:
            ci = _interval(weighted.low, weighted.high, options, CIMethod.ADJUSTED_WALD)
        n_effective = cell.weighted.n_effective
        unweighted = UnweightedRead.model_construct(nps=tally.nps, ci=plain_read)
    return ScoreRead.model_construct(
        nps=nps,
        n=n,
        promoters=tally.promoters,
        passives=tally.passives,
        detractors=tally.detractors,
        promoter_pct=pct(tally.promoters),
        passive_pct=pct(tally.passives),
        detractor_pct=pct(tally.detractors),
        ci=ci,
        precision=precision(n, min_n=options.min_n, low_n=options.low_n),
        n_effective=n_effective,
        unweighted=unweighted,
    )


def change_read(
    current: Cell, other: Cell, options: ScoreOptions, *, previous: datetime | None = None
) -> ChangeRead | None:
    """current minus other; weighted scores are tested on their pseudo-counts."""
    if current.weighted is not None and other.weighted is not None:
        change = compare_counts(
            current.weighted.pseudo_counts(),
            other.weighted.pseudo_counts(),
            confidence=options.confidence,
        )
    else:
        change = compare(current.tally, other.tally, confidence=options.confidence)
    if change is None:
        return None
    return ChangeRead(
        previous=previous,
        difference=change.difference,
        ci=_interval(change.low, change.high, options, CIMethod.ADJUSTED_WALD),
        z=change.z,
        p_value=change.p_value,
        significant=change.significant,
    )


def benchmark_standing(
    industry: str | None, nps: float | None, table: dict[str, Range]
) -> BenchmarkStanding:
    bounds = None if industry is None else table.get(normalise_industry(industry))
    return BenchmarkStanding(
        industry=industry,
        low=None if bounds is None else bounds.low,
        high=None if bounds is None else bounds.high,
        position=position(nps, bounds),
    )


def groups_read(
    dimension: Dimension,
    cells: dict[Any, Cell],
    options: ScoreOptions,
    benchmarks: dict[str, Range] | None = None,
) -> list[GroupRead]:
    """Groups in key order, the unknown (null) group last."""
    name = column_name(dimension)
    ordered = sorted(cells.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
    groups = []
    for key, cell in ordered:
        score = score_read(cell, options)
        standing = None
        if dimension is Dimension.INDUSTRY and benchmarks is not None:
            standing = benchmark_standing(key, score.nps, benchmarks)
        groups.append(GroupRead(key={name: key}, score=score, benchmark=standing))
    return groups
