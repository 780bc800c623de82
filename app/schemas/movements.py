"""Movements: stakeholders whose answer falls in another category than their previous one."""

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from app.models import JobLevel, Role
from app.scoring import Category, Direction

_BEFORE: JsonValue = {
    "response_id": "5f0c6a8e-2f1b-4d3c-9a57-0e1f2a3b4c5d",
    "score": 9,
    "category": "promoter",
    "submitted_at": "2026-03-02T10:00:00Z",
}
_AFTER: JsonValue = {
    "response_id": "8d7e6f5a-4b3c-4a1d-8e9f-0a1b2c3d4e5f",
    "score": 7,
    "category": "passive",
    "submitted_at": "2026-09-14T08:30:00Z",
}


class AnswerRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    response_id: uuid.UUID
    score: int
    category: Category
    submitted_at: datetime


MOVEMENT_READ_EXAMPLE: JsonValue = {
    "stakeholder_id": "dana@acme.example",
    "account_id": "acme",
    "role": "decision_maker",
    "job_level": "executive",
    "direction": "down",
    "from": _BEFORE,
    "to": _AFTER,
}


class MovementRead(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
        serialize_by_alias=True,
        json_schema_extra={"examples": [MOVEMENT_READ_EXAMPLE]},
    )

    stakeholder_id: str
    account_id: str = Field(description="the account of the new answer")
    role: Role = Field(description="the role the stakeholder had at the new answer")
    job_level: JobLevel = Field(description="the job level at the new answer")
    direction: Direction
    from_: AnswerRead = Field(alias="from", description="the previous answer")
    to: AnswerRead = Field(description="the new answer, in another category")


class TransitionRead(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    from_: Category = Field(alias="from")
    to: Category
    count: int


class NetMoverRead(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    stakeholder_id: str
    role: Role = Field(description="the role at the last movement's new answer")
    from_: AnswerRead = Field(alias="from", description="the first movement's previous answer")
    to: AnswerRead = Field(description="the last movement's new answer")


ACCOUNT_MOVEMENTS_REPORT_EXAMPLE: JsonValue = {
    "account_id": "acme",
    "from": "2025-11-23T00:00:00Z",
    "to": "2026-11-23T00:00:00Z",
    "up": 1,
    "down": 1,
    "transitions": [
        {"from": "detractor", "to": "promoter", "count": 1},
        {"from": "promoter", "to": "passive", "count": 1},
    ],
    "climbers": [
        {
            "stakeholder_id": "lee@acme.example",
            "role": "user",
            "from": {
                "response_id": "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e",
                "score": 4,
                "category": "detractor",
                "submitted_at": "2026-01-12T14:00:00Z",
            },
            "to": {
                "response_id": "1c2d3e4f-5a6b-4c7d-9e8f-0a1b2c3d4e5f",
                "score": 10,
                "category": "promoter",
                "submitted_at": "2026-07-03T09:15:00Z",
            },
        }
    ],
    "fallers": [
        {
            "stakeholder_id": "dana@acme.example",
            "role": "decision_maker",
            "from": _BEFORE,
            "to": _AFTER,
        }
    ],
}


class AccountMovementsReport(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
        serialize_by_alias=True,
        json_schema_extra={"examples": [ACCOUNT_MOVEMENTS_REPORT_EXAMPLE]},
    )

    account_id: str
    from_: datetime = Field(alias="from")
    to: datetime
    up: int
    down: int
    transitions: list[TransitionRead] = Field(
        description="non-zero counts, by `from` then `to` (detractor, passive, promoter)"
    )
    climbers: list[NetMoverRead] = Field(description="stakeholders ending higher than they began")
    fallers: list[NetMoverRead] = Field(description="stakeholders ending lower than they began")
