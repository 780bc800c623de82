"""Themes in comments, counted in SQL over the answers /v1/nps counts.

`theme_cells`: one statement, one row: the categories (and weight sums) of every counted answer
and, per theme, of the answers whose comment mentions it (a regular expression over the folded
comment, app.text). `term_counts`: the words and two-word phrases of the detractors' and the
promoters' comments (and of every counted comment, the prior's background), aggregated in
PostgreSQL; only the terms seen at least `min_count` times on the two sides reach Python, after
the totals, in batches.
"""

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from app.scoring import Category, Tally, WeightedTally
from app.services.cells import Cell, category_sums
from app.services.counting import counted_answers
from app.services.selection import Selection
from app.sql import is_category
from app.text import WORD_CLASS, fold_sql, phrase_pattern, words

# Terms are read from the database this many at a time.
TERM_BATCH = 5_000


@dataclass(frozen=True, slots=True)
class ThemeCells:
    total: Cell
    commented: int  # counted answers with a comment that has a word
    mentioned: dict[str, Cell]  # per theme, its mentioners


def theme_patterns(themes: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Each theme's regular expression: any of its keywords as whole words (app.text)."""
    return {name: phrase_pattern([words(k) for k in keywords]) for name, keywords in themes.items()}


def _cell(row: Sequence[Any], at: int, weighted: bool) -> tuple[Cell, int]:
    tally = Tally(int(row[at]), int(row[at + 1]), int(row[at + 2]))
    if not weighted:
        return Cell(tally), at + 3
    w = WeightedTally(*(float(v or 0) for v in row[at + 3 : at + 7]))
    return Cell(tally, w), at + 7


async def theme_cells(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    selection: Selection,
    themes: Mapping[str, Sequence[str]],
) -> ThemeCells:
    """The total and each theme's mentioners, from one scan of the counted answers."""
    rows, where = counted_answers(workspace_id, selection, extra=("comment",))
    weighted = selection.weighting is not None
    patterns = theme_patterns(themes)
    names = sorted(patterns)
    # OFFSET 0 keeps the folded comment a column of its own: pulled up into the outer query,
    # the folding would run again for every theme.
    folded = (
        select(
            rows.c.score,
            (rows.c.weight if weighted else literal(1)).label("w"),
            fold_sql(rows.c.comment).label("text"),
        )
        .select_from(rows)
        .where(*where)
        .offset(literal_column("0"))
        .subquery("folded")
    )
    text = folded.c.text
    matching = select(
        folded.c.score,
        folded.c.w,
        func.coalesce(text.op("~")(f"[{WORD_CLASS}]"), False).label("commented"),
        *(
            func.coalesce(text.op("~")(patterns[name]), False).label(f"m{i}")
            for i, name in enumerate(names)
        ),
    ).offset(literal_column("0"))
    # (The same for each theme's match, which every category's sum reads.)
    matched = matching.subquery("matched")
    score, w = matched.c.score, matched.c.w

    def sums(flag: Any) -> list[Any]:
        one = literal(1) if flag is None else case((flag, 1), else_=0)
        out = category_sums(one, score)
        if weighted:
            weight = w if flag is None else case((flag, w), else_=0)
            out += [*category_sums(weight, score), func.coalesce(func.sum(weight * weight), 0)]
        return out

    columns = [func.count().filter(matched.c.commented), *sums(None)]
    for i in range(len(names)):
        columns += sums(matched.c[f"m{i}"])
    row = (await session.execute(select(*columns))).one()
    total, at = _cell(row, 1, weighted)
    mentioned = {}
    for name in names:
        mentioned[name], at = _cell(row, at, weighted)
    return ThemeCells(total, int(row[0]), mentioned)


@dataclass(frozen=True, slots=True)
class Side:
    comments: int = 0
    terms: int = 0  # words plus two-word phrases


@dataclass(frozen=True, slots=True)
class TermTotals:
    detractors: Side
    promoters: Side
    background: Side  # every counted comment: promoters', passives' and detractors'


def _term_query(workspace_id: uuid.UUID, selection: Selection, min_count: int) -> Any:
    rows, where = counted_answers(workspace_id, selection, extra=("comment",))
    side = case(
        (is_category(rows.c.score, Category.DETRACTOR), literal("d")),
        (is_category(rows.c.score, Category.PROMOTER), literal("p")),
        else_=literal("a"),
    )
    spaced = func.btrim(
        func.regexp_replace(fold_sql(rows.c.comment), f"[^{WORD_CLASS}]+", " ", "g")
    )
    folded = (
        select(side.label("side"), spaced.label("t"))
        .select_from(rows)
        .where(*where, rows.c.comment.isnot(None))
        .offset(literal_column("0"))
        .subquery("folded")
    )
    docs = (
        select(folded.c.side, func.string_to_array(folded.c.t, " ", type_=ARRAY(String)).label("a"))
        .where(folded.c.t != "")
        .cte("docs")
    )
    a = docs.c.a
    word = func.unnest(a).table_valued("term").render_derived("word")
    position = (
        func.generate_series(1, func.cardinality(a) - 1).table_valued("i").render_derived("i")
    )
    bigram = a[position.c.i].concat(" ").concat(a[position.c.i + 1])
    terms = union_all(
        select(docs.c.side, word.c.term, literal(1).label("tok"))
        .select_from(docs)
        .join(word, literal(True)),
        select(docs.c.side, bigram.label("term"), literal(1).label("tok"))
        .select_from(docs)
        .join(position, literal(True)),
        # One marker per comment: the term-less group counts the comments of each side.
        select(docs.c.side, cast(null(), String).label("term"), literal(0).label("tok")),
    ).subquery("terms")
    t = terms.c

    def on(s: str, value: Any) -> Any:
        return func.coalesce(func.sum(value).filter(t.side == s), 0)

    grand = func.grouping(t.term)
    tok, doc = t.tok, 1 - t.tok
    # Grouping sets: each term, and () for the totals of each side.
    return (
        select(
            cast(grand, Integer).label("grand"),
            t.term,
            on("d", tok),
            on("p", tok),
            func.sum(tok),
            on("d", doc),
            on("p", doc),
            func.sum(doc),
        )
        .group_by(func.grouping_sets(t.term, literal_column("()")))
        .having(
            or_(
                grand == 1,
                t.term.is_(None),
                and_(on("d", tok) + on("p", tok) >= min_count),
            )
        )
        .order_by(grand.desc(), t.term.nulls_first())
    )


async def term_counts(
    session: AsyncSession, workspace_id: uuid.UUID, selection: Selection, *, min_count: int
) -> tuple[TermTotals, AsyncIterator[list[tuple[str, int, int, int]]]]:
    """The totals, then batches of (term, detractor count, promoter count, background count)
    for each term seen at least `min_count` times on the two sides, in term order."""
    query = _term_query(workspace_id, selection, min_count)
    result = await session.stream(query.execution_options(yield_per=TERM_BATCH))
    totals = (0, 0, 0)
    docs = (0, 0, 0)
    head: list[tuple[str, int, int, int]] = []
    async for row in result:
        if row[0] == 1:
            totals = (int(row[2] or 0), int(row[3] or 0), int(row[4] or 0))
        elif row[1] is None:
            docs = (int(row[5] or 0), int(row[6] or 0), int(row[7] or 0))
        else:
            head.append((row[1], int(row[2]), int(row[3]), int(row[4])))
            break
    counts = TermTotals(
        detractors=Side(docs[0], totals[0]),
        promoters=Side(docs[1], totals[1]),
        background=Side(docs[2], totals[2]),
    )

    async def batches() -> AsyncIterator[list[tuple[str, int, int, int]]]:
        batch = head
        async for row in result:
            batch.append((row[1], int(row[2]), int(row[3]), int(row[4])))
            if len(batch) >= TERM_BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    return counts, batches()
