"""Accounts, stakeholders and API keys: what a CRM and an admin register."""

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
)

from app.models import JobLevel, Role, Scope
from app.schemas.attributes import Attributes
from app.schemas.base import (
    AccountKey,
    ClientId,
    Currency,
    DocumentedAs,
    Email,
    ItemResult,
    Label,
    Money,
    Name,
    ShortText,
    Strict,
)

# Accounts


class AccountFields(Strict):
    name: Name | None = None
    industry: ShortText | None = None
    segment: ShortText | None = None
    annual_revenue: Money | None = None
    currency: Currency | None = Field(default=None, description="ISO 4217 code of annual_revenue")
    attributes: Attributes = Field(default_factory=dict)


class AccountUpsert(AccountFields):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Acme Corp",
                    "industry": "technology",
                    "segment": "enterprise",
                    "annual_revenue": "1200000.00",
                    "currency": "EUR",
                }
            ]
        }
    )


class AccountRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str | None
    industry: str | None
    segment: str | None
    annual_revenue: Money | None
    currency: str | None
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime


# Stakeholders


class StakeholderFields(Strict):
    account_id: AccountKey
    name: Name | None = None
    email: Email | None = None
    role: Role = Role.OTHER
    job_level: JobLevel = JobLevel.OTHER
    department: ShortText | None = None
    attributes: Attributes = Field(default_factory=dict)
    account: AccountFields | None = Field(
        default=None,
        description="creates the account in the same call when it does not exist yet "
        "(an existing account is left unchanged)",
    )


class StakeholderUpsert(StakeholderFields):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "account_id": "acme",
                    "name": "Dana Smith",
                    "email": "dana@acme.example",
                    "role": "decision_maker",
                    "job_level": "executive",
                    "department": "Engineering",
                }
            ]
        }
    )


class StakeholderInline(StakeholderFields):
    id: ClientId


class StakeholderRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    account_id: str
    name: str | None
    email: str | None
    role: Role
    job_level: JobLevel
    department: str | None
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime


# Batches of accounts and stakeholders

_ITEMS = (
    "up to 1,000 items, each validated and upserted as a PUT of it would be; items apply in "
    "order, so of items with the same id the last valid one is stored"
)


class AccountBatchItem(AccountFields):
    """One account of a batch: its id and the fields of PUT /v1/accounts/{id}."""

    id: AccountKey


class AccountBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accounts: Annotated[list[Any], DocumentedAs(list[AccountBatchItem])] = Field(description=_ITEMS)


class StakeholderBatchItem(StakeholderFields):
    """One stakeholder of a batch: its id and the fields of PUT /v1/stakeholders/{id}."""

    id: ClientId


class StakeholderBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stakeholders: Annotated[list[Any], DocumentedAs(list[StakeholderBatchItem])] = Field(
        description=_ITEMS
    )


class RegisteredItem(ItemResult[str]):
    status: int = Field(description="201 created, 200 replaced, 4xx refused (see `problem`)")


class RegistrationResult(BaseModel):
    created: int
    replaced: int
    failed: int
    results: list[RegisteredItem]


# API keys


class ApiKeyCreate(Strict):
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=3)]
    label: Label | None = None


class ApiKeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    prefix: str
    scopes: list[Scope]
    label: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="the secret; shown only in this answer")
