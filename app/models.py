"""Tables. Every tenant-owned table leads its keys with workspace_id (Citus-ready)."""

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.scoring import Category, classify


class Role(StrEnum):
    DECISION_MAKER = "decision_maker"
    INFLUENCER = "influencer"
    USER = "user"
    OTHER = "other"


class JobLevel(StrEnum):
    EXECUTIVE = "executive"
    DIRECTOR = "director"
    MANAGER = "manager"
    INDIVIDUAL_CONTRIBUTOR = "individual_contributor"
    OTHER = "other"


class Channel(StrEnum):
    API = "api"
    WIDGET = "widget"
    IMPORT = "import"
    EMAIL = "email"
    LINK = "link"


class InvitationChannel(StrEnum):
    EMAIL = "email"
    LINK = "link"
    WIDGET = "widget"


class InvitationStatus(StrEnum):
    ISSUED = "issued"
    OPENED = "opened"
    ANSWERED = "answered"
    DISMISSED = "dismissed"
    EXPIRED = "expired"
    REVOKED = "revoked"
    SUPPRESSED = "suppressed"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Scope(StrEnum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


def _now() -> Any:
    return func.now()


class Workspace(Base):
    __tablename__ = "workspaces"
    __table_args__ = (
        # A CORS preflight carries no token: is its origin listed by any workspace (jsonb `?`)?
        Index(
            "ix_workspaces_allowed_origins",
            text("(settings -> 'allowed_origins')"),
            postgresql_using="gin",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        UniqueConstraint("prefix"),
        UniqueConstraint("key_hash"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    prefix: Mapped[str] = mapped_column(String(32))
    key_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        Index("ix_accounts_workspace_updated", "workspace_id", "updated_at", "id"),
        CheckConstraint("annual_revenue IS NULL OR annual_revenue >= 0", name="revenue_positive"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(300))
    industry: Mapped[str | None] = mapped_column(String(100))
    segment: Mapped[str | None] = mapped_column(String(100))
    annual_revenue: Mapped[Decimal | None] = mapped_column(Numeric(20, 2))
    currency: Mapped[str | None] = mapped_column(String(3))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class Stakeholder(Base):
    __tablename__ = "stakeholders"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "account_id"],
            ["accounts.workspace_id", "accounts.id"],
            ondelete="CASCADE",
        ),
        Index("ix_stakeholders_workspace_account", "workspace_id", "account_id"),
        Index("ix_stakeholders_workspace_updated", "workspace_id", "updated_at", "id"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(String(300))
    email: Mapped[str | None] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(32), server_default=Role.OTHER.value)
    job_level: Mapped[str] = mapped_column(String(32), server_default=JobLevel.OTHER.value)
    department: Mapped[str | None] = mapped_column(String(100))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


# What a score is counted and cut by: carried in the covering indexes of responses.
SCORE_COLUMNS = [
    "stakeholder_id",
    "account_id",
    "role",
    "job_level",
    "department",
    "survey",
    "score",
]


class SurveyResponse(Base):
    __tablename__ = "responses"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "stakeholder_id"],
            ["stakeholders.workspace_id", "stakeholders.id"],
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["workspace_id", "account_id"],
            ["accounts.workspace_id", "accounts.id"],
            ondelete="CASCADE",
        ),
        UniqueConstraint("workspace_id", "external_id"),
        CheckConstraint("score BETWEEN 0 AND 10", name="score_range"),
        # Covering, so a window's answers (a trend's buckets, the respondent method) are read
        # from the index alone; superseded_at tells each bucket's latest answers apart. Keyed
        # in the answers' full order, so a page of movements reads them newest first with no
        # sort (app.services.movements).
        Index(
            "ix_responses_workspace_submitted",
            "workspace_id",
            "submitted_at",
            "created_at",
            "id",
            postgresql_include=[*SCORE_COLUMNS, "superseded_at"],
            postgresql_where=text("NOT excluded"),
        ),
        Index(
            "ix_responses_workspace_account_submitted", "workspace_id", "account_id", "submitted_at"
        ),
        # Finds the part of a stakeholder's chain that a new, late or excluded answer relinks.
        Index(
            "ix_responses_workspace_stakeholder_superseded",
            "workspace_id",
            "stakeholder_id",
            "superseded_at",
        ),
        Index("ix_responses_workspace_updated", "workspace_id", "updated_at", "id"),
        # Latest answers per stakeholder as of any instant, read without touching the table:
        # an answer is its stakeholder's latest in [from, to) when superseded_at >= to.
        Index(
            "ix_responses_latest",
            "workspace_id",
            "superseded_at",
            "submitted_at",
            postgresql_include=SCORE_COLUMNS,
            postgresql_where=text("NOT excluded"),
        ),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    external_id: Mapped[str | None] = mapped_column(String(128))
    stakeholder_id: Mapped[str] = mapped_column(String(128))
    account_id: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(32))
    job_level: Mapped[str] = mapped_column(String(32))
    department: Mapped[str | None] = mapped_column(String(100))
    score: Mapped[int] = mapped_column(SmallInteger)
    comment: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    survey: Mapped[str | None] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(16), server_default=Channel.API.value)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    excluded: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    excluded_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    # When the stakeholder's next counted answer was submitted ('infinity' for the latest one),
    # kept by app.services.chain. Internal: never loaded into objects nor shown to clients.
    superseded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("'infinity'"), deferred=True
    )

    @property
    def category(self) -> Category:
        return classify(self.score)


# The tables every answer appends to hold no foreign key to workspaces: each row's check
# key-share-locked the one workspace row that every concurrent writer of the workspace locks too,
# a MultiXact per concurrent answer on top of the look-up (about a fifth of the database's time
# for one answer, measured). Their workspace_id always comes from the authenticated caller, and a
# deleted workspace takes their rows with it all the same: the trigger made by migration 0017
# (AFTER DELETE ON workspaces) deletes them.
WORKSPACE_LEFTOVERS = (
    "events",
    "jobs",
    "idempotency_keys",
    "data_versions",
    "tally_deltas",
    "answer_tallies",
)


class IdempotencyRecord(Base):
    """The stored outcome of a POST made with an Idempotency-Key, replayed on retry.

    An answer that showed personal data keeps no copy of it: only the name of its reader and
    the id it showed (app.api.idempotency re-reads it on replay), so an erasure reaches it."""

    __tablename__ = "idempotency_keys"
    # No foreign key to workspaces (nor on jobs and events): see WORKSPACE_LEFTOVERS.
    __table_args__ = (
        Index("ix_idempotency_keys_created_at", "created_at"),
        CheckConstraint(
            "(body IS NULL) = (reread IS NOT NULL AND resource_id IS NOT NULL)",
            name="body_or_reread",
        ),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary(32))
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    reread: Mapped[str | None] = mapped_column(String(64))
    resource_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class Job(Base):
    """Background work (app.jobs): written in the transaction of the change that needs it, so it
    commits or vanishes with it, and claimed by a worker with FOR UPDATE SKIP LOCKED.

    Tenant work carries its workspace (and goes with it); periodic upkeep has none.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        # A periodic job's slot, or a caller's own key: the same work is queued once.
        UniqueConstraint("dedupe_key"),
        CheckConstraint("attempts >= 0 AND max_attempts >= 1", name="attempts_valid"),
        CheckConstraint("lease_seconds >= 1", name="lease_positive"),
        # What a worker claims: due jobs, and running ones whose worker's lease ran out.
        Index(
            "ix_jobs_claimable",
            "run_at",
            "id",
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
        Index("ix_jobs_workspace_id", "workspace_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    workspace_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    task: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    status: Mapped[str] = mapped_column(String(16), server_default=JobStatus.QUEUED.value)
    dedupe_key: Mapped[str | None] = mapped_column(String(300))
    run_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    max_attempts: Mapped[int] = mapped_column(Integer, server_default=text("5"))
    lease_seconds: Mapped[int] = mapped_column(Integer, server_default=text("300"))
    locked_by: Mapped[str | None] = mapped_column(String(200))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ResponseRevision(Base):
    """One correction of a stored response: who changed it, when, and each field's before and
    after (`changes`: {field: {"from": old, "to": new}}), kept as long as the response is."""

    __tablename__ = "response_revisions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "response_id"],
            ["responses.workspace_id", "responses.id"],
            ondelete="CASCADE",
        ),
        CheckConstraint("revision >= 2", name="revision_after_original"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    response_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    # The response as recorded is revision 1; each correction is the next number.
    revision: Mapped[int] = mapped_column(Integer, primary_key=True)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    # Who made the change, as the caller's subject names itself (e.g. "api_key:nps_ab12cd34").
    changed_by: Mapped[str] = mapped_column(String(200))
    changes: Mapped[dict[str, Any]] = mapped_column(JSONB)


class DeletionKind(StrEnum):
    ACCOUNT = "account"
    STAKEHOLDER = "stakeholder"
    RESPONSE = "response"


class Deletion(Base):
    """A tombstone: that an account, stakeholder or response was deleted, and when. No personal
    data beyond the client's own id, so a CRM syncing with updated_since can see deletes too."""

    __tablename__ = "deletions"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        CheckConstraint("kind IN ('account', 'stakeholder', 'response')", name="kind_known"),
        # GET /v1/deletions?since= pages in (deleted_at, seq) order.
        Index("ix_deletions_workspace_deleted", "workspace_id", "deleted_at", "seq"),
        # The retention purge.
        Index("ix_deletions_deleted_at", "deleted_at"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    object_id: Mapped[str] = mapped_column(String(128))
    # A response's external_id, so a CRM that keys responses by its own id can match the delete.
    external_id: Mapped[str | None] = mapped_column(String(128))
    deleted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class Event(Base):
    """A domain event (app.services.events): written in the transaction of the change it
    announces, dispatched by the worker to its subscribers (webhooks, follow-up cases). Its id is
    the webhook-id a receiver deduplicates by."""

    __tablename__ = "events"
    __table_args__ = (
        # Replays ("everything since"), in the order the events happened.
        Index("ix_events_workspace_occurred", "workspace_id", "occurred_at", "seq"),
        # The retention purge.
        Index("ix_events_occurred_at", "occurred_at"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID)
    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True))
    type: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class Survey(Base):
    """A survey definition: the question (with overrides per role), the experience attributes to
    rate (the typed driver catalog), the follow-up and thank-you texts, per locale. A survey id
    without a definition still works with the defaults."""

    __tablename__ = "surveys"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        Index("ix_surveys_workspace_updated", "workspace_id", "updated_at", "id"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class Invitation(Base):
    """An invitation of one stakeholder to answer one survey, by a single-use token (stored only
    as its hash). A suppressed one (a fatigue rule said no) has no token and says which rule."""

    __tablename__ = "invitations"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "stakeholder_id"],
            ["stakeholders.workspace_id", "stakeholders.id"],
            ondelete="CASCADE",
        ),
        UniqueConstraint("token_hash"),
        CheckConstraint(
            "status IN ('issued', 'opened', 'answered', 'dismissed', 'expired', 'revoked', "
            "'suppressed')",
            name="status_known",
        ),
        CheckConstraint("channel IN ('email', 'link', 'widget')", name="channel_known"),
        # The fatigue rules: a stakeholder's invitations, newest first.
        Index(
            "ix_invitations_workspace_stakeholder", "workspace_id", "stakeholder_id", "created_at"
        ),
        # max_per_account: the open invitations of an account and survey.
        Index("ix_invitations_workspace_account_survey", "workspace_id", "account_id", "survey"),
        Index("ix_invitations_workspace_updated", "workspace_id", "updated_at", "id"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    token_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    stakeholder_id: Mapped[str] = mapped_column(String(128))
    # The stakeholder's account when invited (rates per account count where they were asked).
    account_id: Mapped[str] = mapped_column(String(128))
    survey: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(16))
    locale: Mapped[str | None] = mapped_column(String(35))
    status: Mapped[str] = mapped_column(String(16), server_default=InvitationStatus.ISSUED.value)
    suppression_rule: Mapped[str | None] = mapped_column(String(64))
    suppressed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dismissed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    response_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class Unsubscribe(Base):
    """A stakeholder who asked not to be surveyed again (the unsubscribe fatigue rule)."""

    __tablename__ = "unsubscribes"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "stakeholder_id"],
            ["stakeholders.workspace_id", "stakeholders.id"],
            ondelete="CASCADE",
        ),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    stakeholder_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    unsubscribed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=_now()
    )


class RateLimitWindow(Base):
    """Requests counted in one fixed window for one client IP or invitation token: the rate
    limits of the public calls, shared by every API process (app.guard). Not tenant-owned (an
    IP belongs to no workspace). UNLOGGED: a crash may forget the counts of the last minute,
    which costs nothing, and writes skip the WAL. Old windows are purged by the worker."""

    __tablename__ = "rate_limit_windows"
    __table_args__ = ({"prefixes": ["UNLOGGED"]},)

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    hits: Mapped[int] = mapped_column(Integer)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WebhookEndpoint(Base):
    """A receiver of the workspace's events (docs/webhooks.md). The signing secret is kept as
    is, since signing needs it; after a rotation the previous one signs too until it expires."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        Index("ix_webhook_endpoints_workspace_updated", "workspace_id", "updated_at", "id"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    url: Mapped[str] = mapped_column(String(2048))
    # None: every event type.
    events: Mapped[list[str] | None] = mapped_column(ARRAY(String(64)))
    description: Mapped[str | None] = mapped_column(String(500))
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    # Why it is disabled when the service disabled it (`failing`); None when a caller did.
    disabled_reason: Mapped[str | None] = mapped_column(String(32))
    # When the current run of failed attempts began; None after a success.
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    secret: Mapped[str] = mapped_column(String(100))
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class WebhookDelivery(Base):
    """One event for one endpoint: written once (the unique key makes a repeated dispatch a
    no-op), attempted on the retry schedule until it succeeds or the schedule ends."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "endpoint_id"],
            ["webhook_endpoints.workspace_id", "webhook_endpoints.id"],
            ondelete="CASCADE",
        ),
        # The log goes with the event when retention purges it.
        ForeignKeyConstraint(["event_id"], ["events.id"], ondelete="CASCADE"),
        UniqueConstraint("workspace_id", "endpoint_id", "event_id"),
        CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status_known"),
        # An endpoint's log, newest first.
        Index(
            "ix_webhook_deliveries_endpoint_created", "workspace_id", "endpoint_id", "created_at"
        ),
        Index("ix_webhook_deliveries_event_id", "event_id"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(UUID)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID)
    status: Mapped[str] = mapped_column(String(16), server_default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class WebhookAttempt(Base):
    """One HTTP attempt of a delivery: its status code (None when no answer came), latency,
    error and the first KiB of the answer."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "delivery_id"],
            ["webhook_deliveries.workspace_id", "webhook_deliveries.id"],
            ondelete="CASCADE",
        ),
        Index("ix_webhook_attempts_delivery", "workspace_id", "delivery_id", "attempted_at"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(UUID)
    attempted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    response_excerpt: Mapped[str | None] = mapped_column(Text)


class CaseKind(StrEnum):
    RECOVERY = "recovery"
    ADVOCACY = "advocacy"


class CaseStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    CLOSED = "closed"


# How a case may end, by kind.
CASE_OUTCOMES: dict[CaseKind, tuple[str, ...]] = {
    CaseKind.RECOVERY: ("resolved", "unresolved", "no_reply", "not_actionable"),
    CaseKind.ADVOCACY: ("reference_agreed", "testimonial", "declined", "no_reply"),
}


def _listed(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


class Case(Base):
    """A follow-up case: one stakeholder's answers that a case rule says someone must act on
    (recovery), or a promoter to ask for a reference (advocacy). Opened by the worker from
    `response.created` events; at most one open case per stakeholder and kind."""

    __tablename__ = "cases"
    __table_args__ = (
        # Erasing a stakeholder erases their cases (and with them notes and changes).
        ForeignKeyConstraint(
            ["workspace_id", "stakeholder_id"],
            ["stakeholders.workspace_id", "stakeholders.id"],
            ondelete="CASCADE",
        ),
        CheckConstraint("kind IN ('recovery', 'advocacy')", name="kind_known"),
        CheckConstraint("status IN ('open', 'in_progress', 'closed')", name="status_known"),
        CheckConstraint(
            f"outcome IS NULL"
            f" OR (kind = 'recovery' AND outcome IN ({_listed(CASE_OUTCOMES[CaseKind.RECOVERY])}))"
            f" OR (kind = 'advocacy' AND outcome IN ({_listed(CASE_OUTCOMES[CaseKind.ADVOCACY])}))",
            name="outcome_fits_kind",
        ),
        CheckConstraint(
            "(status = 'closed') = (outcome IS NOT NULL AND closed_at IS NOT NULL)",
            name="closed_has_outcome",
        ),
        CheckConstraint("sla_hours BETWEEN 1 AND 8760", name="sla_hours_range"),
        # One open case per stakeholder and kind: a new trigger joins it.
        Index(
            "uq_cases_open_per_stakeholder",
            "workspace_id",
            "stakeholder_id",
            "kind",
            unique=True,
            postgresql_where=text("status <> 'closed'"),
        ),
        # A stakeholder's cases (the erasure cascade, a case's history, recovery metrics).
        Index("ix_cases_workspace_stakeholder", "workspace_id", "stakeholder_id", "opened_at"),
        Index("ix_cases_workspace_updated", "workspace_id", "updated_at", "id"),
        Index("ix_cases_workspace_account", "workspace_id", "account_id"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(16))
    stakeholder_id: Mapped[str] = mapped_column(String(128))
    # As they were at the answer that opened the case.
    account_id: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(32))
    job_level: Mapped[str] = mapped_column(String(32))
    department: Mapped[str | None] = mapped_column(String(100))
    # The id of the case rule that opened it (workspace settings `case_rules`).
    rule: Mapped[str] = mapped_column(String(64))
    # The rule's SLA when the case opened: due_at may be moved, the SLA it was opened with not.
    sla_hours: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), server_default=CaseStatus.OPEN.value)
    owner: Mapped[str | None] = mapped_column(String(200))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(32))
    root_cause: Mapped[str | None] = mapped_column(String(64))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    first_action_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class CaseResponse(Base):
    """An answer that triggered a case, and the rule it matched. A response triggers at most one
    case of each kind (the constraint that makes a re-run event harmless)."""

    __tablename__ = "case_responses"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "case_id"], ["cases.workspace_id", "cases.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["workspace_id", "response_id"],
            ["responses.workspace_id", "responses.id"],
            ondelete="CASCADE",
        ),
        UniqueConstraint("workspace_id", "response_id", "kind"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    case_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    response_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    rule: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class CaseNote(Base):
    __tablename__ = "case_notes"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "case_id"], ["cases.workspace_id", "cases.id"], ondelete="CASCADE"
        ),
        Index("ix_case_notes_workspace_case", "workspace_id", "case_id", "created_at"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    case_id: Mapped[uuid.UUID] = mapped_column(UUID)
    author: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class CaseChange(Base):
    """What happened to a case, who did it and when: `action` (opened, response_added, updated,
    note_added) and each field's before and after (`changes`: {field: {"from", "to"}})."""

    __tablename__ = "case_changes"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "case_id"], ["cases.workspace_id", "cases.id"], ondelete="CASCADE"
        ),
        Index("ix_case_changes_workspace_case", "workspace_id", "case_id", "seq"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    case_id: Mapped[uuid.UUID] = mapped_column(UUID)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    # "api_key:<prefix>" for a person, "rule:<rule id>" for the worker applying a case rule.
    changed_by: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(32))
    changes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))


class AccountRisk(Base):
    """Each account's place on the at-risk list as the worker last assessed it, under the
    workspace's default parameters (app.services.risk_changes): what an `account.risk_changed`
    event is a change from. An account with no row has not been assessed yet and counts as off
    the list."""

    __tablename__ = "account_risk"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "account_id"],
            ["accounts.workspace_id", "accounts.id"],
            ondelete="CASCADE",
        ),
        CheckConstraint("at_risk = (cardinality(reasons) > 0)", name="at_risk_has_reasons"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    account_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    at_risk: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # The reason codes (app.schemas.at_risk.Reason) it was flagged for, in the rules' order.
    reasons: Mapped[list[str]] = mapped_column(ARRAY(String(64)), server_default=text("'{}'"))
    # When it last entered or left the list, and the event that said so.
    changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    change_event_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class DataVersion(Base):
    """One shard of a workspace's data version: the sum of its shards changes with every
    committed write a score can depend on (statement triggers of migration 0019; the shard is
    the writing backend's pid mod 64, so concurrent writers rarely share a row lock)."""

    __tablename__ = "data_versions"
    # No foreign key to workspaces: see WORKSPACE_LEFTOVERS (and migration 0019).

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


class AnswerTally(Base):
    """Answers counted per UTC calendar bucket (a week or a month), role, job level and score:
    how many there were, and how many were their stakeholder's latest in the bucket, and, for
    a month, in its quarter and in its year (migration 0023; read by app.services.tallies, with
    the pending TallyDelta rows added)."""

    __tablename__ = "answer_tallies"
    # No foreign key to workspaces: see WORKSPACE_LEFTOVERS (and migration 0023).
    __table_args__ = (CheckConstraint("grain IN ('week', 'month')", name="grain"),)

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    grain: Mapped[str] = mapped_column(String(8), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    role: Mapped[str] = mapped_column(String(32), primary_key=True)
    job_level: Mapped[str] = mapped_column(String(32), primary_key=True)
    score: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    answers: Mapped[int] = mapped_column(Integer)
    latest: Mapped[int] = mapped_column(Integer)
    latest_quarter: Mapped[int] = mapped_column(Integer)
    latest_year: Mapped[int] = mapped_column(Integer)


class TallyDelta(Base):
    """A counted answer as it is now (+1) or as it was (-1), added by the triggers of migration
    0023 in the writing transaction; the worker's fold moves them into AnswerTally."""

    __tablename__ = "tally_deltas"
    # No foreign key to workspaces: see WORKSPACE_LEFTOVERS (and migration 0023).
    __table_args__ = (Index("ix_tally_deltas_submitted", "workspace_id", "submitted_at"),)

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    superseded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    role: Mapped[str] = mapped_column(String(32))
    job_level: Mapped[str] = mapped_column(String(32))
    score: Mapped[int] = mapped_column(SmallInteger)
    sign: Mapped[int] = mapped_column(SmallInteger)


class AccountPrediction(Base):
    """One version of an account-team member's prediction of how likely the account is to
    recommend us (issue 15, the staff perception gap). Each PUT adds a version stamped with the
    server's clock, never the caller's: only versions made before the answers they are compared
    with count (app.services.perception). `author` names a member of the workspace's own staff,
    not a stakeholder: no personal data of a client is kept here. Predictions never enter a
    score."""

    __tablename__ = "account_predictions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "account_id"],
            ["accounts.workspace_id", "accounts.id"],
            ondelete="CASCADE",
        ),
        CheckConstraint("predicted_score BETWEEN 0 AND 10", name="predicted_score_range"),
        CheckConstraint("version >= 1", name="version_positive"),
        Index("ix_account_predictions_workspace_predicted", "workspace_id", "predicted_at"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    account_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    author: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    predicted_score: Mapped[int] = mapped_column(SmallInteger)
    # Role -> predicted score, for the roles the author predicted separately.
    role_predictions: Mapped[dict[str, int]] = mapped_column(
        JSONB, server_default=text("'{}'::jsonb")
    )
    note: Mapped[str | None] = mapped_column(Text)
    predicted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class ImportKind(StrEnum):
    ACCOUNTS = "accounts"
    STAKEHOLDERS = "stakeholders"
    RESPONSES = "responses"


class ImportFormat(StrEnum):
    CSV = "csv"
    NDJSON = "ndjson"


class ImportStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Import(Base):
    """An uploaded file of accounts, stakeholders or responses and its progress (app.services
    .imports). The file's bytes wait in import_chunks until the worker has read them; its
    rejected rows are kept in import_errors."""

    __tablename__ = "imports"
    __table_args__ = (
        ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        CheckConstraint("kind IN ('accounts', 'stakeholders', 'responses')", name="kind_known"),
        CheckConstraint("format IN ('csv', 'ndjson')", name="format_known"),
        CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')",
            name="status_known",
        ),
        # The same file again: found by its hash.
        Index("ix_imports_workspace_sha256", "workspace_id", "sha256"),
        Index("ix_imports_workspace_created", "workspace_id", "created_at", "id"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    format: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), server_default=ImportStatus.QUEUED.value)
    preset: Mapped[str | None] = mapped_column(String(32))
    mapping: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    file_name: Mapped[str | None] = mapped_column(String(300))
    sha256: Mapped[bytes] = mapped_column(LargeBinary(32))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    # An import of a file (and mapping) stored before: nothing of it is stored again.
    duplicate_of: Mapped[uuid.UUID | None] = mapped_column(UUID)
    rows_read: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    rows_stored: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    rows_duplicate: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    rows_rejected: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    bytes_read: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class ImportChunk(Base):
    """A piece of an uploaded file, in order: the file waits here (PostgreSQL being the only
    state) until the import ends, then its chunks are deleted."""

    __tablename__ = "import_chunks"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "import_id"],
            ["imports.workspace_id", "imports.id"],
            ondelete="CASCADE",
        ),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    import_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ImportRowError(Base):
    """A rejected row of an import: where, why, and the row as it was sent. It copies personal
    data, so it names the stakeholder, account and email it is about: erasing one of them
    deletes these rows too (app.services.imports.forget_rows)."""

    __tablename__ = "import_errors"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "import_id"],
            ["imports.workspace_id", "imports.id"],
            ondelete="CASCADE",
        ),
        Index("ix_import_errors_stakeholder", "workspace_id", "stakeholder_id"),
        Index("ix_import_errors_account", "workspace_id", "account_id"),
        Index("ix_import_errors_email", "workspace_id", "email"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    import_id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    row_number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    seq: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    field: Mapped[str | None] = mapped_column(String(300))
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)
    stakeholder_id: Mapped[str | None] = mapped_column(String(128))
    account_id: Mapped[str | None] = mapped_column(String(128))
    email: Mapped[str | None] = mapped_column(String(320))
