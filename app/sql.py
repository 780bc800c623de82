"""SQL expressions the services share, each written once: the NPS categories, the department
key, the order of a stakeholder's answers, and array parameters.

The thresholds come from app.scoring, so SQL and the pure math can never disagree.
"""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, String, and_, bindparam, case, func
from sqlalchemy.dialects.postgresql import ARRAY

from app.scoring import PASSIVE_MIN, PROMOTER_MIN, RANKS, Category


def is_category(score: Any, category: Category) -> ColumnElement[bool]:
    """`score` (a 0-10 score, or an account's mean score) falls in `category`."""
    if category is Category.PROMOTER:
        return score >= PROMOTER_MIN  # type: ignore[no-any-return]
    if category is Category.PASSIVE:
        return and_(score >= PASSIVE_MIN, score < PROMOTER_MIN)
    return score < PASSIVE_MIN  # type: ignore[no-any-return]


def category_rank(score: Any) -> ColumnElement[int]:
    """The category's position in RANKS: 0 for a detractor up to 2 for a promoter."""
    return case(
        *(
            (is_category(score, category), rank)
            for rank, category in reversed(list(enumerate(RANKS)))
        ),
        else_=0,
    )


def department_key(column: Any) -> ColumnElement[Any]:
    """Departments are free text, grouped and matched case-insensitively after trimming spaces."""
    return func.lower(func.btrim(column))


def department_value(department: str) -> str:
    """department_key of a value given in a request (PostgreSQL's btrim trims spaces only)."""
    return department.strip(" ").lower()


# The order of a stakeholder's answers that every score, chain and movement follows: by
# submission, ties to the answer recorded last, then to the id, so no choice depends on a plan.
ANSWER_ORDER = ("submitted_at", "created_at", "id")
ANSWER_ORDER_SQL = ", ".join(ANSWER_ORDER)


def answer_order(table: Any) -> tuple[Any, ...]:
    """ANSWER_ORDER as columns of `table` (the responses table, a subquery or its `.c`)."""
    columns = getattr(table, "c", table)
    return tuple(getattr(columns, name) for name in ANSWER_ORDER)


def text_array(values: Sequence[str]) -> Any:
    """One array parameter: `col = ANY(:values)` is one prepared statement for any length,
    where IN (...) renders a new statement, and a new plan, for every count of values."""
    return bindparam(None, list(values), type_=ARRAY(String))
