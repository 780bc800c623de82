"""`attributes`, wherever a body carries them, and the one set of bounds they share.

Accounts and stakeholders take CRM custom fields (any JSON); responses and public answers take
driver ratings (flat: a number, a boolean or a short text per key). Both are stored as jsonb and
read back on every list, so each is bounded in keys, key length, nesting and size; a breach is a
422 at the field (`["body", "attributes"]`).
"""

import json
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StrictBool, StrictFloat, StrictInt, StrictStr

ATTRIBUTES_MAX_KEYS = 100  # members of `attributes` itself, and of any object inside it
ATTRIBUTE_KEY_MAX_LENGTH = 100  # characters of a member name, at any depth
ATTRIBUTES_MAX_DEPTH = 4  # levels of objects and arrays, `attributes` itself the first
ATTRIBUTES_MAX_BYTES = 16 * 1024  # serialised as compact JSON in UTF-8
DRIVER_TEXT_MAX_LENGTH = 1000

LIMITS = (
    f"at most {ATTRIBUTES_MAX_KEYS} members per object, member names of at most "
    f"{ATTRIBUTE_KEY_MAX_LENGTH} characters, {ATTRIBUTES_MAX_DEPTH} levels of nesting and "
    f"{ATTRIBUTES_MAX_BYTES} bytes as compact UTF-8 JSON"
)

DRIVER_LIMITS = (
    f"at most {ATTRIBUTES_MAX_KEYS} ratings, keys of at most {ATTRIBUTE_KEY_MAX_LENGTH} "
    f"characters, texts of at most {DRIVER_TEXT_MAX_LENGTH}, {ATTRIBUTES_MAX_BYTES} bytes as "
    "compact UTF-8 JSON"
)


def _shape_problem(value: object, depth: int) -> str | None:
    if isinstance(value, dict):
        members: list[Any] = list(value.values())
        if len(value) > ATTRIBUTES_MAX_KEYS:
            return f"an object has more than {ATTRIBUTES_MAX_KEYS} members"
        if any(len(name) > ATTRIBUTE_KEY_MAX_LENGTH for name in value):
            return f"a member name is longer than {ATTRIBUTE_KEY_MAX_LENGTH} characters"
    elif isinstance(value, list):
        members = value
    else:
        return None
    if depth > ATTRIBUTES_MAX_DEPTH:
        return f"nested deeper than {ATTRIBUTES_MAX_DEPTH} levels"
    for member in members:
        problem = _shape_problem(member, depth + 1)
        if problem is not None:
            return problem
    return None


def bounded(value: dict[str, Any]) -> dict[str, Any]:
    """`attributes` within LIMITS; else a ValueError saying which limit."""
    problem = _shape_problem(value, 1)
    if problem is not None:
        raise ValueError(f"attributes: {problem}")
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > ATTRIBUTES_MAX_BYTES:
        raise ValueError(f"attributes are {size} bytes as JSON, over {ATTRIBUTES_MAX_BYTES}")
    return value


_Name = Annotated[str, Field(max_length=ATTRIBUTE_KEY_MAX_LENGTH)]

# CRM custom fields: any JSON within LIMITS (and the rules of every body: no NUL, NaN, ...).
Attributes = Annotated[
    dict[_Name, Any],
    Field(max_length=ATTRIBUTES_MAX_KEYS, description=f"custom fields, any JSON: {LIMITS}"),
    AfterValidator(bounded),
]
# The experience behind a score, e.g. {"support": 4, "product": 5}: flat, scalar values.
DriverValue = (
    StrictInt
    | StrictFloat
    | StrictBool
    | Annotated[StrictStr, Field(max_length=DRIVER_TEXT_MAX_LENGTH)]
)
Drivers = Annotated[
    dict[_Name, DriverValue | None],
    Field(max_length=ATTRIBUTES_MAX_KEYS),
    AfterValidator(bounded),
]
