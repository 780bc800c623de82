"""Responses: one, a batch, their results, and exclusion."""

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
    model_validator,
)

from app.models import Channel, JobLevel, Role
from app.schemas.base import (
    ClientId,
    DocumentedAs,
    Drivers,
    ItemResult,
    Strict,
    SurveyKey,
    Timestamp,
)
from app.schemas.registry import StakeholderInline
from app.scoring import SCORE_MAX, SCORE_MIN, Category

# Responses


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
    score: Annotated[StrictInt, Field(ge=SCORE_MIN, le=SCORE_MAX)] = Field(
        description="an integer 0-10; booleans, decimals and strings are refused"
    )
    comment: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    submitted_at: Timestamp | None = Field(
        default=None, description="RFC 3339 with offset; default now; at most 5 minutes ahead"
    )
    survey: SurveyKey | None = None
    channel: Channel = Channel.API
    attributes: Drivers = Field(
        default_factory=dict,
        description='driver ratings behind the score, e.g. {"support": 4}: flat scalar values',
    )
    external_id: ClientId | None = Field(
        default=None, description="the caller's id; a second response with it is never stored"
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


class ResponsePatch(Strict):
    excluded: StrictBool = Field(description="true leaves the response out of every score")
    reason: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
        | None
    ) = Field(
        default=None,
        description="required when `excluded` is true; ignored (and the stored one cleared) "
        "when it is false",
    )

    @model_validator(mode="after")
    def _reason_when_excluding(self) -> "ResponsePatch":
        if self.excluded and self.reason is None:
            raise ValueError("a reason is required to exclude a response")
        return self


class BatchRequest(BaseModel):
    responses: Annotated[list[Any], DocumentedAs(list[ResponseCreate])] = Field(
        description="up to 1,000 responses (more is a 413 and nothing is stored); each is "
        "validated on its own, so an invalid one is refused alone, in its result"
    )


class BatchItemResult(ItemResult[uuid.UUID]):
    status: int = Field(
        description="the item's own HTTP status: 201 stored, 200 already stored "
        "(`duplicate`), 4xx refused (see `problem`)"
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
