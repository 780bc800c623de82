"""Score objects, breakdowns, changes, weights and benchmark standings from counted cells."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.industries import Range, RoleTable, normalise_industry, position, role_range
from app.models import Account
from app.schemas import GroupRead, IntervalRead, ScoreRead
from app.schemas.scores import (
    AccountProfile,
    BenchmarkStanding,
    ChangeRead,
    RoleBenchmarkStanding,
    UnweightedRead,
    WeightsRead,
)
from app.scoring import Change, CIMethod, Method, confidence_interval, precision, weighted_interval
from app.services.cells import Cell, Cells, change_between
from app.services.selection import Counting, Dimension, ScoreOptions, column_name

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
    """current minus other, tested (app.services.cells.change_between); None when untestable."""
    return present_change(
        change_between(current, other, confidence=options.confidence), options, previous=previous
    )


def present_change(
    change: Change | None, options: ScoreOptions, *, previous: datetime | None = None
) -> ChangeRead | None:
    if change is None:
        return None
    return ChangeRead(
        previous=previous,
        difference=change.difference,
        adjusted_difference=change.adjusted_difference,
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


def role_standing(
    role: str | None,
    industry: str | None,
    nps: float | None,
    roles: RoleTable,
    industries: dict[str, Range],
) -> RoleBenchmarkStanding:
    """Where a role group stands (app.industries.role_range picks the range)."""
    bounds, source = role_range(role, industry, roles, industries)
    return RoleBenchmarkStanding(
        industry=industry,
        role=role,
        low=None if bounds is None else bounds.low,
        high=None if bounds is None else bounds.high,
        position=position(nps, bounds),
        source=source,
    )


def account_profile(account: Account | None) -> AccountProfile | None:
    return None if account is None else AccountProfile.model_validate(account)


def groups_read(
    dimension: Dimension,
    cells: dict[Any, Cell],
    options: ScoreOptions,
    benchmarks: dict[str, Range] | None = None,
    accounts: Mapping[str, Account] | None = None,
    *,
    roles: RoleTable | None = None,
    industry: str | None = None,
) -> list[GroupRead]:
    """Groups in key order, the unknown (null) group last. With `benchmarks`, industry groups
    carry their standing; with `accounts`, account groups carry the account's profile and its
    standing against the account's industry; with `roles`, role groups carry their standing
    against their role's range (within `industry` when one is known)."""
    name = column_name(dimension)
    ordered = sorted(cells.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
    groups = []
    for key, cell in ordered:
        score = score_read(cell, options)
        standing = profile = None
        if dimension is Dimension.INDUSTRY and benchmarks is not None:
            standing = benchmark_standing(key, score.nps, benchmarks)
        if dimension is Dimension.ACCOUNT and accounts is not None:
            account = accounts.get(key)
            profile = account_profile(account)
            standing = benchmark_standing(
                None if account is None else account.industry, score.nps, benchmarks or {}
            )
        if dimension is Dimension.ROLE and roles is not None:
            standing = role_standing(key, industry, score.nps, roles, benchmarks or {})
        groups.append(GroupRead(key={name: key}, score=score, account=profile, benchmark=standing))
    return groups


def weights_read(counting: Counting, cells: Cells) -> WeightsRead | None:
    """The weights that produced a score: role_weighted's, or account_as_unit's."""
    if counting.method is Method.ROLE_WEIGHTED and counting.weighting is not None:
        return WeightsRead(
            role=dict(counting.weighting.role), job_level=dict(counting.weighting.job_level)
        )
    if counting.method is not Method.ACCOUNT_AS_UNIT:
        return None
    missing = set().union(*(c.without_revenue for c in cells.values()))
    return WeightsRead(
        role=None if counting.weighting is None else dict(counting.weighting.role),
        job_level=None if counting.weighting is None else dict(counting.weighting.job_level),
        account="revenue" if counting.by_revenue else "equal",
        accounts_without_revenue=sorted(missing) if counting.by_revenue else None,
    )
