"""A repeated external_id: the same content (a retry, answered with the stored response) or
other content (a 409 naming the stored response; a change is a PATCH, app.services.corrections).

"The same content" compares what the client sends of the answer: the stakeholder, score,
comment, survey, channel and attributes (as JSON: 1, 1.0 and true differ), and submitted_at
when it is sent (a retry that omits it matches whatever was stored, which was "now"). An
omitted comment or survey is null and an omitted channel is "api", as they were stored. A
corrected response matches both its current content and its content as first recorded, so a
late retry of the original request is still a duplicate.
"""

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.canonical import canonical_json
from app.errors import ExternalIdConflict, field_error
from app.models import SurveyResponse
from app.schemas import ResponseCreate
from app.services.revisions import recorded_values

# The answer fields a repeat is compared on; submitted_at only when the repeat sends it.
_COMPARED = ("stakeholder_id", "score", "comment", "survey", "channel", "attributes")


def differing_fields(item: ResponseCreate, stored: Mapping[str, Any]) -> list[str]:
    """The fields the item sends with other values than `stored` (a row's columns)."""
    sent: dict[str, Any] = {
        "stakeholder_id": item.stakeholder_key,
        "score": item.score,
        "comment": item.comment,
        "survey": item.survey,
        "channel": item.channel.value,
        "attributes": canonical_json(item.attributes),
    }
    have = {name: stored[name] for name in _COMPARED} | {
        "attributes": canonical_json(stored["attributes"])
    }
    if item.submitted_at is not None:
        sent["submitted_at"], have["submitted_at"] = item.submitted_at, stored["submitted_at"]
    return [name for name, value in sent.items() if have[name] != value]


def _columns(response: SurveyResponse) -> dict[str, Any]:
    return {name: getattr(response, name) for name in (*_COMPARED, "submitted_at")}


def repeat_conflict(
    item: ResponseCreate, response_id: uuid.UUID, fields: Sequence[str], loc: tuple[str | int, ...]
) -> ExternalIdConflict:
    who = ["stakeholder", "id"] if item.stakeholder is not None else ["stakeholder_id"]
    where = [[*loc, *who] if name == "stakeholder_id" else [*loc, name] for name in fields]
    return ExternalIdConflict(
        f"external_id {item.external_id!r} is already stored as response {response_id} with "
        f"other content ({', '.join(fields)}); to change that response, "
        f"PATCH /v1/responses/{response_id}",
        response_id=response_id,
        errors=[field_error(w, "differs from the stored response") for w in where],
    )


async def judge_repeats(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    repeats: Sequence[tuple[ResponseCreate, SurveyResponse, tuple[str | int, ...]]],
) -> list[ExternalIdConflict | None]:
    """For each item repeating a stored external_id: None when it sends the same content as
    the stored response (now or as first recorded), else the 409 naming it."""
    differing = [differing_fields(item, _columns(stored)) for item, stored, _ in repeats]
    corrected = await recorded_values(
        session,
        workspace_id,
        [stored for (_, stored, _), d in zip(repeats, differing, strict=True) if d],
    )
    out: list[ExternalIdConflict | None] = []
    for (item, stored, loc), fields in zip(repeats, differing, strict=True):
        as_recorded = corrected.get(stored.id)
        if (
            fields
            and as_recorded is not None
            and not differing_fields(item, _columns(stored) | as_recorded)
        ):
            fields = []
        out.append(repeat_conflict(item, stored.id, fields, loc) if fields else None)
    return out
