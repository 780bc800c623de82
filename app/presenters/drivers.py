"""Fitting the driver models on gathered slices (app.services.drivers) and presenting them.

CPU-bound (eigen-decompositions per resample, 2^p subsets for shapley): the router runs
`drivers_report` in a worker thread.
"""

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from app.analysis.drivers import (
    Decomposition,
    bootstrap,
    correlations,
    decompose,
    independent_attributes,
)
from app.schemas.drivers import (
    DriverGroup,
    DriverModel,
    DriverPrecision,
    DriverRead,
    DriversReport,
    ExcludedAttribute,
    ImportanceInterval,
    Quadrant,
)
from app.schemas.scores import RoleBenchmarkStanding, ScoreRead
from app.services.drivers import Catalog, Marginal, Slice
from app.services.selection import Dimension, column_name

GroupStanding = tuple[ScoreRead | None, RoleBenchmarkStanding | None]

# Fewer clusters than this and the account bootstrap says little.
MIN_ACCOUNTS = 5


@dataclass(frozen=True, slots=True)
class Fit:
    method: Decomposition
    resamples: int
    seed: int
    confidence: float


def min_n(p: int) -> int:
    """n below which a model of p attributes is `insufficient`: ten answers per parameter."""
    return 10 * (p + 1)


def precision(n: int, accounts: int, p: int) -> DriverPrecision:
    """insufficient below min_n(p) or MIN_ACCOUNTS accounts; low below 50 + 8p (Green 1991)."""
    if n < min_n(p) or accounts < MIN_ACCOUNTS:
        return "insufficient"
    return "low" if n < 50 + 8 * p else "ok"


def _mean_and_correlation(m: Marginal) -> tuple[float | None, float | None]:
    w, sx, sxx, sy, syy, sxy = m.sums
    if m.n == 0 or w <= 0:
        return None, None
    mean = sx / w
    var_x = sxx / w - mean**2
    var_y = syy / w - (sy / w) ** 2
    if var_x <= 1e-12 * max(sxx / w, 1.0) or var_y <= 1e-12 * max(syy / w, 1.0):
        return mean, None
    cov = sxy / w - mean * sy / w
    return mean, max(-1.0, min(1.0, cov / (var_x * var_y) ** 0.5))


def _performance(mean: float, scale: int | None) -> float:
    return (mean - 1) / (scale - 1) if scale else mean


def _quadrants(drivers: list[DriverRead], scales: dict[str, int]) -> dict[str, Quadrant]:
    rated = [d for d in drivers if d.importance is not None and d.mean is not None]
    if not rated:
        return {}
    importance = statistics.median(d.importance for d in rated if d.importance is not None)
    perf = {
        d.attribute: _performance(d.mean, scales.get(d.attribute))
        for d in rated
        if d.mean is not None
    }
    performance = statistics.median(perf.values())
    out: dict[str, Quadrant] = {}
    for d in rated:
        assert d.importance is not None
        high = d.importance >= importance
        good = perf[d.attribute] >= performance
        out[d.attribute] = (
            ("keep" if good else "fix_first") if high else ("surplus" if good else "monitor")
        )
    return out


def _collinear_detail(r: np.ndarray, kept: list[int], j: int, names: Sequence[str]) -> str:
    index = [i + 1 for i in kept]
    coef, *_ = np.linalg.lstsq(r[np.ix_(index, index)], r[index, j + 1], rcond=None)
    partners = [names[i] for i, c in zip(kept, coef, strict=True) if abs(c) > 1e-6]
    return (
        "a linear combination of " + ", ".join(partners)
        if partners
        else "linearly dependent on the attributes kept"
    ) + " in the answers of the model; its share would be arbitrary"


def fit_model(s: Slice, catalog: Catalog, fit: Fit) -> DriverModel:
    excluded = [ExcludedAttribute(attribute=a, reason=r, detail=d) for a, r, d in s.excluded]
    names = list(s.kept)
    n = sum(rows for rows, _ in s.accounts)
    accounts = len(s.accounts)

    def model(drivers: list[DriverRead], r2: float | None, p: int, note: str | None) -> DriverModel:
        return DriverModel(
            r2=r2,
            n=n,
            accounts=accounts,
            rows=s.rows,
            rows_dropped=s.rows - n,
            precision=precision(n, accounts, p),
            min_n=min_n(p),
            note=note,
            excluded=excluded,
            drivers=drivers,
        )

    def plain(name: str) -> DriverRead:
        mean, corr = _mean_and_correlation(s.marginals[name])
        return DriverRead(
            attribute=name,
            importance=None,
            raw_weight=None,
            ci=None,
            mean=mean,
            n=s.marginals[name].n,
            correlation=corr,
            quadrant=None,
        )

    if not names:
        return model([], None, 0, "no attribute to analyse: none is rated often enough and varies")
    if n < 2:
        return model(
            [plain(k) for k in names],
            None,
            len(names),
            "fewer than two answers rate every attribute kept",
        )
    stacked = np.array([m for _, m in s.accounts])
    total = stacked.sum(axis=0)
    r = correlations(total)
    if _flat_score(total):
        return model(
            [plain(k) for k in names],
            None,
            len(names),
            "the score does not vary in the answers of the model",
        )
    kept = independent_attributes(r)
    for j in range(len(names)):
        if j not in kept:
            excluded.append(
                ExcludedAttribute(
                    attribute=names[j],
                    reason="collinear",
                    detail=_collinear_detail(r, kept, j, names),
                )
            )
    index = [0, 1, *(2 + j for j in kept)]
    kept_names = [names[j] for j in kept]
    stacked = stacked[:, index][:, :, index]
    rr = correlations(stacked.sum(axis=0))
    raw = decompose(rr, fit.method)
    r2 = float(raw.sum())
    p = len(kept_names)
    level = precision(n, accounts, p)
    intervals: list[ImportanceInterval | None] = [None] * p
    if r2 > 1e-12 and level != "insufficient" and accounts >= 2:
        result = bootstrap(
            stacked,
            fit.method,
            resamples=fit.resamples,
            seed=fit.seed,
            confidence=fit.confidence,
        )
        intervals = [
            None
            if lo is None or hi is None
            else ImportanceInterval(low=lo, high=hi, level=fit.confidence)
            for lo, hi in zip(result.low, result.high, strict=True)
        ]
    drivers = []
    for j, name in enumerate(kept_names):
        d = plain(name)
        d.raw_weight = float(raw[j])
        d.importance = 100.0 * float(raw[j]) / r2 if r2 > 1e-12 else None
        d.ci = intervals[j]
        drivers.append(d)
    quadrants = _quadrants(drivers, catalog.scales)
    for d in drivers:
        d.quadrant = quadrants.get(d.attribute)
    drivers.sort(key=lambda d: (-(d.importance or 0.0), d.attribute))
    note = None if r2 > 1e-12 else "the attributes explain none of the score's variance"
    return model(drivers, r2, p, note)


def _flat_score(total: np.ndarray) -> bool:
    w, sy, syy = total[0, 0], total[0, 1], total[1, 1]
    return bool(syy / w - (sy / w) ** 2 <= 1e-12 * max(syy / w, 1.0))


def drivers_report(
    slices: Sequence[Slice],
    catalog: Catalog,
    fit: Fit,
    *,
    counting_method: str,
    start: datetime,
    end: datetime,
    filters: dict[str, str],
    group_by: Dimension | None,
    standings: Mapping[str | None, GroupStanding] | None = None,
) -> DriversReport:
    """`standings`: each group's score (and, by role, its benchmark standing)."""
    groups = None
    if group_by is not None:
        name = column_name(group_by)
        groups = []
        for s in slices[1:]:
            score, benchmark = (standings or {}).get(s.key, (None, None))
            groups.append(
                DriverGroup(
                    key={name: s.key},
                    model=fit_model(s, catalog, fit),
                    score=score,
                    benchmark=benchmark,
                )
            )
    return DriversReport(
        method=counting_method,
        driver_method=fit.method.value,
        from_=start,
        to=end,
        filters=filters,
        attribute_source=catalog.source,
        resamples=fit.resamples,
        seed=fit.seed,
        confidence=fit.confidence,
        model=fit_model(slices[0], catalog, fit),
        groups=groups,
    )
