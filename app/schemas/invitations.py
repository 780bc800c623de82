"""Invitations: one stakeholder asked to answer one survey by a single-use token."""

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from app.models import InvitationChannel, InvitationStatus
from app.schemas.attributes import DRIVER_LIMITS, Drivers
from app.schemas.base import (
    ClientId,
    DocumentedAs,
    ItemResult,
    Strict,
    SurveyId,
    Timestamp,
    refuse_null,
)
from app.schemas.responses import Comment, Score

# BCP 47 language tags in their common shape: a language, then subtags (de, de-CH, zh-Hant-TW).
LOCALE_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$"
Locale = Annotated[str, StringConstraints(pattern=LOCALE_PATTERN, max_length=35)]


class InvitationCreate(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"stakeholder_id": "p-1", "survey": "relationship-2026", "channel": "email"}
            ]
        }
    )

    stakeholder_id: ClientId = Field(description="a stakeholder of the workspace")
    survey: SurveyId = Field(description="the survey id; it needs no definition")
    channel: InvitationChannel
    expires_at: Timestamp | None = Field(
        default=None, description="default: 30 days from now; at most 180 days ahead"
    )
    locale: Locale | None = Field(default=None, description="BCP 47 tag, e.g. de or en-GB")


class Suppression(BaseModel):
    rule: str = Field(
        description="answered_recently, dismissed_recently, unanswered_recently, "
        "open_invitation, unsubscribed or max_per_account"
    )
    until: datetime | None = Field(description="when the rule stops applying; null: indefinitely")


class InvitationRead(BaseModel):
    """An invitation as stored; its token is never shown again after it was issued."""

    id: uuid.UUID
    stakeholder_id: str
    account_id: str = Field(description="the stakeholder's account when invited")
    survey: str
    channel: InvitationChannel
    locale: str | None
    status: InvitationStatus = Field(
        description="an issued or opened invitation past expires_at reads as expired"
    )
    suppression: Suppression | None = Field(description="why it was suppressed; else null")
    expires_at: datetime | None = Field(description="null for a suppressed invitation")
    opened_at: datetime | None
    answered_at: datetime | None
    dismissed_at: datetime | None
    revoked_at: datetime | None
    response_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class InvitationCreated(InvitationRead):
    token: str | None = Field(
        description="the single-use token, shown in this answer only; null when suppressed"
    )
    url: str | None = Field(description="the hosted survey page; null when suppressed")


class InvitationBatch(BaseModel):
    invitations: Annotated[list[Any], DocumentedAs(list[InvitationCreate])] = Field(
        description="up to 1,000 invitations (more is a 413 and nothing is stored); each is "
        "validated on its own, and the fatigue rules apply between items in order"
    )


class InvitationItemResult(ItemResult[uuid.UUID]):
    status: int = Field(
        description="201 issued; 200 suppressed by a fatigue rule (stored, see invitation); "
        "4xx refused, see problem"
    )
    invitation: InvitationCreated | None = Field(
        default=None, description="the stored invitation (with its token when issued)"
    )


class InvitationBatchResult(BaseModel):
    issued: int
    suppressed: int
    failed: int
    results: list[InvitationItemResult]


class PublicAttribute(BaseModel):
    key: str
    label: str
    scale: int = Field(description="rated 1 to scale")


class PublicTexts(BaseModel):
    """The survey's texts for this person: their role's question, in the invitation's locale
    (or its language, else English), `{company}` filled in."""

    locale: str = Field(description="the locale these texts are in")
    question: str
    low_label: str = Field(description="the label of score 0")
    high_label: str = Field(description="the label of score 10")
    follow_up: str = Field(description="the question asking for a comment")
    thank_you: str
    attributes: list[PublicAttribute] = Field(description="the experience attributes to rate")


class PublicAnswer(Strict):
    """The invited person's answer: recorded as a response of their stakeholder, to the
    invitation's survey, by its channel."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"score": 9, "comment": "Support is quick", "attributes": {"support": 5}}]
        }
    )

    score: Score = Field(description="an integer 0-10; booleans, decimals and strings are refused")
    comment: Comment | None = None
    attributes: Drivers = Field(
        default_factory=dict,
        description='ratings of the survey\'s attributes, e.g. {"support": 4}: flat scalar values; '
        + DRIVER_LIMITS,
    )


class PublicAnswerPatch(Strict):
    """A change to the comment or the attributes, while the answer can still be edited."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"comment": "Support is quick, onboarding was slow"}]}
    )

    comment: Comment | None = Field(default=None, description="null clears the comment")
    attributes: Annotated[Drivers | None, BeforeValidator(refuse_null)] = Field(
        default=None,
        description="replaces the ratings as a whole; {} clears them; " + DRIVER_LIMITS,
    )

    @model_validator(mode="after")
    def _something(self) -> "PublicAnswerPatch":
        if not self.model_fields_set:
            raise ValueError("send at least one of comment, attributes")
        return self


class PublicAnswerRead(BaseModel):
    """An invitation's answer as its person sees it."""

    id: uuid.UUID = Field(description="the response recorded (GET /v1/responses/{id})")
    invitation_id: uuid.UUID
    score: int
    comment: str | None
    attributes: dict[str, Any]
    answered_at: datetime
    editable_until: datetime = Field(
        description="until when PATCH /v1/public/answers may change the comment and attributes"
    )


class PublicInvitationRead(BaseModel):
    """What the hosted page or the widget shows the invited person."""

    id: uuid.UUID
    survey: str
    channel: InvitationChannel
    locale: str | None
    status: InvitationStatus
    first_name: str | None = Field(description="the stakeholder's first name, if known")
    expires_at: datetime | None
    company: str = Field(description="the company the survey asks about")
    texts: PublicTexts
    answer: PublicAnswerRead | None = Field(
        description="the answer once given (status answered), else null"
    )
