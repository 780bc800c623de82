"""Responses: one, a batch, their results, corrections and their revisions."""

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    field_validator,
    model_validator,
)

from app.models import Channel, JobLevel, Role
from app.schemas.attributes import DRIVER_LIMITS, Drivers
from app.schemas.base import (
    ClientId,
    DocumentedAs,
    ItemResult,
    Strict,
    SurveyKey,
    Timestamp,
    refuse_null,
)
from app.schemas.registry import StakeholderInline
from app.scoring import SCORE_MAX, SCORE_MIN, Category

# Responses

Score = Annotated[StrictInt, Field(ge=SCORE_MIN, le=SCORE_MAX)]
COMMENT_MAX_LENGTH = 10_000
Comment = Annotated[str, StringConstraints(max_length=COMMENT_MAX_LENGTH)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class ResponseCreate(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "stakeholder_id": "dana@acme.example",
                    "score": 9,
                    "comment": "Support is quick",
                    "survey": "relationship-2026-q4",
                    "attributes": {"support": 5, "product": 4},
                    "external_id": "crm-survey-123",
                }
            ]
        }
    )

    stakeholder_id: ClientId | None = Field(
        default=None, description="a registered stakeholder; give this or `stakeholder`, not both"
    )
    stakeholder: StakeholderInline | None = Field(
        default=None,
        description="instead of `stakeholder_id` (exactly one of the two): registers a new "
        "stakeholder in the same call; for a known one, updates only the fields given here",
    )
    score: Score = Field(description="an integer 0-10; booleans, decimals and strings are refused")
    comment: Comment | None = None
    submitted_at: Timestamp | None = Field(
        default=None, description="RFC 3339 with offset; default now; at most 5 minutes ahead"
    )
    survey: SurveyKey | None = None
    channel: Channel = Channel.API
    attributes: Drivers = Field(
        default_factory=dict,
        description='driver ratings behind the score, e.g. {"support": 4}: flat scalar values; '
        + DRIVER_LIMITS,
    )
    external_id: ClientId | None = Field(
        default=None,
        description="the caller's id; a second response with it is never stored: the same "
        "content again returns the stored one, other content is a 409",
    )

    @model_validator(mode="after")
    def _one_stakeholder(self) -> "ResponseCreate":
        if (self.stakeholder_id is None) == (self.stakeholder is None):
            raise ValueError("give exactly one of stakeholder_id or stakeholder")
        return self

    @property
    def stakeholder_key(self) -> str:
        if self.stakeholder is not None:
            return self.stakeholder.id
        assert self.stakeholder_id is not None
        return self.stakeholder_id


class ResponseRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    external_id: str | None
    stakeholder_id: str
    account_id: str
    role: Role
    job_level: JobLevel
    department: str | None
    score: int
    category: Category
    comment: str | None
    submitted_at: datetime
    survey: str | None
    channel: Channel
    attributes: dict[str, Any]
    excluded: bool
    excluded_reason: str | None
    created_at: datetime
    updated_at: datetime


# Fields a patch may set but never to null (`comment: null` clears the comment).
_NOT_NULL = ("score", "attributes", "submitted_at", "excluded")


class ResponsePatch(Strict):
    """A correction, an exclusion or both: only the fields sent change."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"score": 7, "comment": "Support was slow this quarter"},
                {"excluded": True, "reason": "test entry"},
            ]
        }
    )

    score: Score | None = Field(default=None, description="an integer 0-10, never coerced")
    comment: Comment | None = Field(default=None, description="null clears the comment")
    attributes: Drivers | None = Field(
        default=None,
        description="replaces the driver ratings as a whole; {} clears them; " + DRIVER_LIMITS,
    )
    submitted_at: Timestamp | None = Field(
        default=None, description="RFC 3339 with offset; at most 5 minutes ahead"
    )
    excluded: StrictBool | None = Field(
        default=None, description="true excludes from every score (with a reason), false includes"
    )
    reason: Reason | None = Field(
        default=None,
        description="why: required with `excluded`: true, and refused without `excluded`",
    )

    _not_null = field_validator(*_NOT_NULL, mode="before")(refuse_null)

    @model_validator(mode="after")
    def _coherent(self) -> "ResponsePatch":
        if not self.model_fields_set:
            raise ValueError(
                "send at least one of score, comment, attributes, submitted_at, excluded"
            )
        if self.excluded is None and "reason" in self.model_fields_set:
            raise ValueError("a reason goes with excluded: true")
        if self.excluded and self.reason is None:
            raise ValueError("a reason is required to exclude a response")
        return self

    def changes(self) -> dict[str, Any]:
        """The response fields this patch sets, with their new values."""
        wanted: dict[str, Any] = {
            name: getattr(self, name)
            for name in ("score", "comment", "attributes", "submitted_at")
            if name in self.model_fields_set
        }
        if self.excluded is not None:
            wanted["excluded"] = self.excluded
            wanted["excluded_reason"] = self.reason if self.excluded else None
        return wanted


class FieldChange(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: Any = Field(alias="from", description="the value before this revision")
    to: Any = Field(description="the value this revision set")


class RevisionValues(BaseModel):
    """The correctable fields of a response as they stood after a revision."""

    score: int
    comment: str | None
    attributes: dict[str, Any]
    submitted_at: datetime
    excluded: bool
    excluded_reason: str | None


class RevisionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    revision: int = Field(description="1 is the response as recorded; each correction is next")
    changed_at: datetime = Field(description="when recorded (revision 1) or corrected")
    changed_by: str | None = Field(
        description='who corrected it, e.g. "api_key:nps_ab12cd34"; null for revision 1'
    )
    changes: dict[str, FieldChange] = Field(
        description="each field this revision changed, from and to; {} for revision 1"
    )
    values: RevisionValues


class BatchRequest(BaseModel):
    responses: Annotated[list[Any], DocumentedAs(list[ResponseCreate])] = Field(
        description="up to 1,000 responses (more is a 413 and nothing is stored); each is "
        "validated on its own, so an invalid one is refused alone, in its result"
    )


class BatchItemResult(ItemResult[uuid.UUID]):
    status: int = Field(
        description="201 stored; 200 already stored with the same content (duplicate); 409 its "
        "external_id is stored with other content (problem.response_id names it); 4xx refused"
    )
    id: uuid.UUID | None = Field(
        default=None, description="the stored response (for a duplicate, the earlier one)"
    )
    duplicate: bool = Field(
        default=False, description="the external_id was already stored, or earlier in the batch"
    )


class BatchResult(BaseModel):
    stored: int
    duplicates: int
    failed: int
    results: list[BatchItemResult]
