"""Themes and suggested themes: the scores and tests of app.scoring, the log-odds of
app.analysis.themes, on what app.services.themes counted."""

import heapq
from collections.abc import AsyncIterator, Mapping, Sequence
from functools import partial

import numpy as np

from app.analysis.themes import log_odds, prior_counts
from app.offload import off_loop
from app.presenters.scores import change_read, score_read
from app.schemas.themes import (
    MATCHING,
    CorpusRead,
    Mentions,
    PriorRead,
    SuggestedThemes,
    TermRead,
    ThemeRead,
    ThemesReport,
    TokenisationRead,
)
from app.scoring import Tally, WeightedTally
from app.services.cells import Cell
from app.services.selection import Counting, Window
from app.services.themes import Side, TermTotals, ThemeCells


def without(total: Cell, part: Cell) -> Cell:
    """The answers of `total` that are not in `part` (a subset of them)."""
    t, p = total.tally, part.tally
    tally = Tally(t.promoters - p.promoters, t.passives - p.passives, t.detractors - p.detractors)
    if total.weighted is None or part.weighted is None:
        return Cell(tally)
    a, b = total.weighted, part.weighted

    def rest(x: float, y: float, count: int) -> float:
        # Sums of weights subtracted: exact for the counts, within float error otherwise.
        return 0.0 if count == 0 else max(0.0, x - y)

    weighted = WeightedTally(
        rest(a.promoters, b.promoters, tally.promoters),
        rest(a.passives, b.passives, tally.passives),
        rest(a.detractors, b.detractors, tally.detractors),
        rest(a.sum_sq, b.sum_sq, tally.n),
    )
    return Cell(tally, weighted)


def themes_report(
    cells: ThemeCells,
    themes: Mapping[str, Sequence[str]],
    counting: Counting,
    *,
    window: Window,
    filters: dict[str, str],
) -> ThemesReport:
    options = counting.options
    overall = cells.total.nps
    out = []
    for name in sorted(themes):
        mentioned = cells.mentioned[name]
        rest = without(cells.total, mentioned)
        rest_nps = rest.nps
        t = mentioned.tally
        out.append(
            ThemeRead(
                theme=name,
                keywords=list(themes[name]),
                mentions=Mentions(
                    promoters=t.promoters, passives=t.passives, detractors=t.detractors, total=t.n
                ),
                mentioners=score_read(mentioned, options),
                non_mentioners=score_read(rest, options),
                difference=change_read(mentioned, rest, options),
                impact=None if overall is None or rest_nps is None else overall - rest_nps,
            )
        )
    return ThemesReport(
        method=counting.method.value,
        from_=window.start,
        to=window.end,
        filters=filters,
        matching=MATCHING,
        score=score_read(cells.total, options),
        commented=cells.commented,
        themes=out,
    )


def _corpus(side: Side) -> CorpusRead:
    return CorpusRead(comments=side.comments, terms=side.terms)


Term = tuple[str, int, int, int]  # term, detractor, promoter and background counts
# (|z|, tie-break key, term, z, delta, variance, prior): a larger tuple ranks first.
Ranked = tuple[float, str, Term, float, float, float, float]


class _Top:
    """The `limit` terms of largest |z| on each side, in two min-heaps."""

    def __init__(self, limit: int, totals: TermTotals, strength: float) -> None:
        self.limit = limit
        self.n_d = float(totals.detractors.terms)
        self.n_p = float(totals.promoters.terms)
        self.n_background = float(totals.background.terms)
        self.strength = strength
        self.detractor: list[Ranked] = []
        self.promoter: list[Ranked] = []

    def add(self, batch: list[Term]) -> None:
        d = np.array([b[1] for b in batch], dtype=np.float64)
        p = np.array([b[2] for b in batch], dtype=np.float64)
        background = np.array([b[3] for b in batch], dtype=np.float64)
        a_w = prior_counts(background, self.n_background, self.strength)
        with np.errstate(divide="ignore", invalid="ignore"):
            fitted = log_odds(d, self.n_d, p, self.n_p, a_w, self.strength)
        for k in np.flatnonzero(np.isfinite(fitted.z) & (fitted.z != 0)):
            z = float(fitted.z[k])
            heap = self.detractor if z > 0 else self.promoter
            size = abs(z)
            if len(heap) >= self.limit and size < heap[0][0]:
                continue
            term = batch[k]
            entry: Ranked = (
                size,
                _reverse(term[0]),
                term,
                z,
                float(fitted.delta[k]),
                float(fitted.variance[k]),
                float(a_w[k]),
            )
            if len(heap) < self.limit:
                heapq.heappush(heap, entry)
            elif entry[:2] > heap[0][:2]:
                heapq.heapreplace(heap, entry)


async def suggested_report(
    totals: TermTotals,
    batches: AsyncIterator[list[Term]],
    counting: Counting,
    *,
    window: Window,
    filters: dict[str, str],
    min_count: int,
    limit: int,
    strength: float,
) -> SuggestedThemes:
    """The `limit` most detractor-leaning and most promoter-leaning terms, kept in two heaps
    while the batches stream by (each fitted in a worker thread): memory of one batch and
    2 * limit terms."""
    top = _Top(limit, totals, strength)
    async for batch in batches:
        await off_loop(partial(top.add, batch))
    return SuggestedThemes(
        method=counting.method.value,
        from_=window.start,
        to=window.end,
        filters=filters,
        min_count=min_count,
        tokenisation=TokenisationRead(),
        prior=PriorRead(strength=strength),
        detractors=_corpus(totals.detractors),
        promoters=_corpus(totals.promoters),
        background=_corpus(totals.background),
        detractor_terms=_ranked(top.detractor),
        promoter_terms=_ranked(top.promoter),
    )


def _reverse(term: str) -> str:
    # Ties on |z| go to the term first in alphabetical order: a key larger for earlier terms.
    return "".join(chr(0x10FFFF - ord(c)) for c in term) + "\U0010ffff"


def _ranked(heap: list[Ranked]) -> list[TermRead]:
    return [
        TermRead(
            term=term,
            z=z,
            delta=delta,
            variance=variance,
            detractor_count=dc,
            promoter_count=pc,
            background_count=bc,
            prior=prior,
        )
        for _, _, (term, dc, pc, bc), z, delta, variance, prior in sorted(
            heap, key=lambda e: e[:2], reverse=True
        )
    ]
