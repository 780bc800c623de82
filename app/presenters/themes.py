"""Themes and suggested themes: the scores and tests of app.scoring, the log-odds of
app.analysis.themes, on what app.services.themes counted."""

import heapq
from collections.abc import AsyncIterator, Mapping, Sequence

import numpy as np

from app.analysis.themes import log_odds, prior_counts
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


Ranked = tuple[float, str, TermRead]


async def suggested_report(
    totals: TermTotals,
    batches: AsyncIterator[list[tuple[str, int, int, int]]],
    counting: Counting,
    *,
    window: Window,
    filters: dict[str, str],
    min_count: int,
    limit: int,
    strength: float,
) -> SuggestedThemes:
    """The `limit` most detractor-leaning and most promoter-leaning terms, kept in two heaps
    while the batches stream by: memory of one batch and 2 * limit terms."""
    n_d, n_p = float(totals.detractors.terms), float(totals.promoters.terms)
    detractor: list[Ranked] = []
    promoter: list[Ranked] = []
    async for batch in batches:
        d = np.array([b[1] for b in batch], dtype=np.float64)
        p = np.array([b[2] for b in batch], dtype=np.float64)
        background = np.array([b[3] for b in batch], dtype=np.float64)
        a_w = prior_counts(background, float(totals.background.terms), strength)
        fitted = log_odds(d, n_d, p, n_p, a_w, strength)
        for k, (term, dc, pc, bc) in enumerate(batch):
            z = float(fitted.z[k])
            if not np.isfinite(z) or z == 0:
                continue
            read = TermRead(
                term=term,
                z=z,
                delta=float(fitted.delta[k]),
                variance=float(fitted.variance[k]),
                detractor_count=dc,
                promoter_count=pc,
                background_count=bc,
                prior=float(a_w[k]),
            )
            # Ties on |z| go to the term first in alphabetical order: min-heaps on (|z|, -term).
            heap = detractor if z > 0 else promoter
            entry = (abs(z), _reverse(term), read)
            if len(heap) < limit:
                heapq.heappush(heap, entry)
            elif entry[:2] > heap[0][:2]:
                heapq.heapreplace(heap, entry)
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
        detractor_terms=_ranked(detractor),
        promoter_terms=_ranked(promoter),
    )


def _reverse(term: str) -> str:
    # A key that sorts in reverse alphabetical order: larger for terms earlier in the alphabet.
    return "".join(chr(0x10FFFF - ord(c)) for c in term) + "\U0010ffff"


def _ranked(heap: list[Ranked]) -> list[TermRead]:
    return [entry[2] for entry in sorted(heap, key=lambda e: e[:2], reverse=True)]
