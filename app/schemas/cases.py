"""Follow-up cases: read, work (status, owner, due_at, outcome) and annotate."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from app.models import CaseKind, CaseStatus, JobLevel, Role
from app.schemas.base import Label, Strict, Timestamp, refuse_null
from app.scoring import Category

CaseOutcome = Literal[
    "resolved",
    "unresolved",
    "no_reply",
    "not_actionable",
    "reference_agreed",
    "testimonial",
    "declined",
]
ROOT_CAUSE_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
RootCause = Annotated[str, StringConstraints(pattern=ROOT_CAUSE_PATTERN)]


class OpenCases(BaseModel):
    """An account's recovery cases not closed yet: evidence beside its score (someone is on it)."""

    count: int
    case_ids: list[uuid.UUID] = Field(description="oldest first; GET /v1/cases/{id} for each")


class CaseRead(BaseModel):
    """A case as it stands; the role snapshot and the account are the opening answer's."""

    id: uuid.UUID
    kind: CaseKind
    rule: str = Field(description="the case rule that opened it (settings `case_rules`)")
    sla_hours: int = Field(description="the rule's SLA when it opened; due_at started there")
    status: CaseStatus
    stakeholder_id: str
    account_id: str
    role: Role
    job_level: JobLevel
    department: str | None
    owner: str | None
    due_at: datetime
    overdue: bool = Field(description="not closed and past due_at")
    outcome: CaseOutcome | None
    root_cause: str | None
    opened_at: datetime
    first_action_at: datetime | None = Field(description="the first change or note by a person")
    closed_at: datetime | None
    updated_at: datetime


class CaseTrigger(BaseModel):
    """An answer that opened or joined the case, and the rule it matched."""

    response_id: uuid.UUID
    rule: str
    added_at: datetime
    score: int
    category: Category
    comment: str | None
    submitted_at: datetime
    survey: str | None


class ScorePoint(BaseModel):
    response_id: uuid.UUID
    score: int
    category: Category
    submitted_at: datetime
    survey: str | None


class CaseNoteRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    author: str = Field(description="who wrote it, e.g. api_key:nps_ab12cd34")
    body: str
    created_at: datetime


class CaseChangeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    changed_at: datetime
    changed_by: str = Field(description="api_key:<prefix>, or rule:<id> for the worker")
    action: Literal["opened", "response_added", "updated", "note_added"]
    changes: dict[str, Any] = Field(description='{field: {"from", "to"}}')


class CaseDetail(CaseRead):
    responses: list[CaseTrigger] = Field(description="the triggering answers, oldest first")
    history: list[ScorePoint] = Field(
        description="the stakeholder's counted answers, oldest first (the latest 100)"
    )
    notes: list[CaseNoteRead] = Field(description="oldest first")
    changes: list[CaseChangeRead] = Field(description="every change, oldest first")


class CasePatch(Strict):
    """Work a case: status only forward (open, in_progress, closed); closing needs `outcome`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"status": "in_progress", "owner": "jane@vendor.example"},
                {"status": "closed", "outcome": "resolved", "root_cause": "billing"},
            ]
        }
    )

    status: CaseStatus | None = Field(None, description="forward only: a step back is a 409")
    owner: Label | None = Field(None, description="null: unassigned")
    due_at: Timestamp | None = Field(None, description="RFC 3339 with offset")
    outcome: CaseOutcome | None = Field(
        None,
        description="with status closed only: recovery resolved, unresolved, no_reply, "
        "not_actionable; advocacy reference_agreed, testimonial, declined, no_reply",
    )
    root_cause: RootCause | None = Field(
        None, description="with status closed only: a code of yours, e.g. billing or onboarding"
    )

    _not_null = field_validator("status", "due_at", "outcome", mode="before")(refuse_null)

    @model_validator(mode="after")
    def _something(self) -> "CasePatch":
        if not self.model_fields_set:
            raise ValueError("send at least one of status, owner, due_at, outcome, root_cause")
        return self


class CaseNoteCreate(Strict):
    body: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]
