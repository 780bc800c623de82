"""Webhook endpoints, their deliveries and attempts, and the calls that replay them."""

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
)

from app.models import DeliveryStatus
from app.schemas.base import Strict, Timestamp, refuse_null
from app.services.events import EVENT_TYPES


def _known_type(value: str) -> str:
    if value not in EVENT_TYPES:
        raise ValueError(f"unknown event type {value!r}; known: {', '.join(EVENT_TYPES)}")
    return value


EventType = Annotated[
    str, AfterValidator(_known_type), Field(json_schema_extra={"enum": list(EVENT_TYPES)})
]
EventTypes = Annotated[
    list[EventType],
    Field(
        min_length=1,
        max_length=len(EVENT_TYPES),
        description="the event types to receive; null or absent: every type",
    ),
]
WebhookUrl = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2048),
    Field(
        description="where events are POSTed: http(s), resolving to public addresses only "
        "(https in production), no credentials in it",
        examples=["https://crm.example.com/hooks/nps"],
    ),
]
Description = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


def _unique(types: list[str] | None) -> list[str] | None:
    if types is not None and len(set(types)) != len(types):
        raise ValueError("an event type appears twice")
    return types


class WebhookCreate(Strict):
    """The body of POST /v1/webhooks."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "url": "https://crm.example.com/hooks/nps",
                    "events": ["response.created", "account.risk_changed"],
                    "description": "CRM: detractor alerts",
                }
            ]
        }
    )

    url: WebhookUrl
    events: EventTypes | None = None
    description: Description | None = None
    enabled: StrictBool = True

    _events_unique = field_validator("events")(_unique)


class WebhookPatch(Strict):
    """Only the fields sent change; `events`: null means every type, `description`: null
    clears it; enabling an endpoint the service disabled starts its failure count afresh."""

    url: WebhookUrl | None = None
    events: EventTypes | None = None
    description: Description | None = None
    enabled: StrictBool | None = None

    _not_null = field_validator("url", "enabled", mode="before")(refuse_null)
    _events_unique = field_validator("events")(_unique)


class WebhookRead(BaseModel):
    """An endpoint, never its secret."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    events: list[str] | None = Field(description="the types it receives; null: every type")
    description: str | None
    enabled: bool
    disabled_reason: str | None = Field(
        description="`failing` when the service disabled it after 5 days of failed "
        "deliveries; null otherwise"
    )
    failing_since: datetime | None = Field(
        description="when its current run of failed attempts began; null after a success"
    )
    previous_secret_expires_at: datetime | None = Field(
        description="after a rotation, until when the previous secret signs too; else null"
    )
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookRead):
    secret: str = Field(
        description="the signing secret (`whsec_` + base64), shown in this answer only"
    )


class AttemptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempted_at: datetime
    status_code: int | None = Field(description="the receiver's HTTP status; null: no answer")
    latency_ms: int
    error: str | None = Field(description="why the attempt failed; null when it succeeded")
    response_excerpt: str | None = Field(description="the answer's first KiB (UTF-8)")


class DeliveryRead(BaseModel):
    """One event for this endpoint, with every attempt so far (oldest first)."""

    id: uuid.UUID
    event_id: uuid.UUID = Field(description="the event's id: the `webhook-id` header")
    event_type: str
    status: DeliveryStatus
    next_attempt_at: datetime | None = Field(description="when it is tried next; null: never")
    last_status_code: int | None
    created_at: datetime
    updated_at: datetime
    attempts: list[AttemptRead]


class RecoverRequest(Strict):
    """The body of POST /v1/webhooks/{id}/recover."""

    since: Timestamp = Field(description="re-deliver every event that occurred at or after this")


class RecoverAccepted(BaseModel):
    since: datetime
    queued: int = Field(description="how many deliveries were queued")


class WebhookTestAccepted(BaseModel):
    event_id: uuid.UUID = Field(description="the `webhook.test` event's id (its webhook-id)")
