"""What every batch endpoint shares: its size limit, parsing items one by one, and the outcome
reported for each item."""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from app.errors import PayloadTooLarge, ProblemError, Unprocessable, field_error, validation_errors

MAX_BATCH = 1000

IdT = TypeVar("IdT")
Item = TypeVar("Item", bound=BaseModel)
Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class ItemOutcome(Generic[IdT]):
    index: int
    status: int
    id: IdT | None = None
    problem: dict[str, Any] | None = None


def check_size(items: Sequence[Any], noun: str) -> None:
    """413 before anything is parsed or stored when the batch holds too many items."""
    if len(items) > MAX_BATCH:
        raise PayloadTooLarge(
            f"a batch holds at most {MAX_BATCH} {noun}; "
            f"this one has {len(items)}: nothing was stored"
        )


def failed(index: int, error: ProblemError) -> ItemOutcome[Any]:
    return ItemOutcome(index, error.status, problem=error.body())


def parse_items(
    model: type[Item],
    items: Sequence[Any],
    field: str,
    noun: str,
    outcomes: dict[int, ItemOutcome[Any]],
) -> list[tuple[int, Item]]:
    """Each item parsed on its own, so one bad item fails alone (recorded in `outcomes`)."""
    one, every = _adapters(model)
    try:
        # Every item in one call when all are valid (the usual batch): one pass of the
        # validator over the list instead of a thousand calls into it.
        return list(enumerate(every.validate_python(items)))
    except ValidationError:
        pass
    valid: list[tuple[int, Item]] = []
    for index, raw in enumerate(items):
        try:
            valid.append((index, one.validate_python(raw)))
        except ValidationError as exc:
            loc: Loc = ("body", field, index)
            errors = [
                field_error([*loc, *e["loc"]], e["msg"]) for e in validation_errors(exc.errors())
            ]
            outcomes[index] = failed(index, Unprocessable(f"invalid {noun}", errors=errors))
    return valid


@lru_cache(maxsize=32)
def _adapters(model: type[Item]) -> tuple[TypeAdapter[Item], TypeAdapter[list[Item]]]:
    return TypeAdapter(model), TypeAdapter(list[model])  # type: ignore[valid-type]


def upsert_outcomes(
    applied: Sequence[tuple[int, str]],
    created: dict[str, bool],
    outcomes: dict[int, ItemOutcome[Any]],
) -> None:
    """The outcome of each applied item (index, id), as if the items were PUT in order: the
    first for an id that the batch created is 201, every other 200."""
    seen: set[str] = set()
    for index, row_id in applied:
        outcomes[index] = ItemOutcome(
            index, 201 if created[row_id] and row_id not in seen else 200, id=row_id
        )
        seen.add(row_id)
