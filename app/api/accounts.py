"""Accounts and stakeholders: what a CRM registers and syncs."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi import Response as HttpResponse
from pydantic import AfterValidator

from app.api.auth import ReadAuth, WriteAuth
from app.api.deps import Cursor, Limit, UpdatedSince
from app.api.idempotency import IdempotentWrite
from app.api.score_params import Text
from app.bodies import StrictRoute
from app.db import LookupSessionDep, ReadSessionDep, SessionDep
from app.errors import Unprocessable, field_error
from app.models import Role
from app.pagination import DEFAULT_LIMIT
from app.presenters.registry import registration_result
from app.schemas import (
    ID_PATTERN,
    RESERVED_ACCOUNT_IDS,
    AccountBatch,
    AccountRead,
    AccountUpsert,
    Page,
    RegistrationResult,
    StakeholderBatch,
    StakeholderRead,
    StakeholderUpsert,
    problem_doc,
)
from app.schemas.base import not_only_dots
from app.services import accounts, stakeholders
from app.services.batches import check_size

router = APIRouter(prefix="/v1", tags=["accounts"], route_class=StrictRoute)

# '.' and '..' are refused as in bodies (a URL cannot name them: clients resolve dot segments).
AccountId = Annotated[
    str,
    Path(pattern=ID_PATTERN, description="the client's own account id"),
    AfterValidator(not_only_dots),
]
StakeholderId = Annotated[
    str,
    Path(pattern=ID_PATTERN, description="the client's own stakeholder id (an email is fine)"),
    AfterValidator(not_only_dots),
]

BATCH_DOCS: dict[int | str, dict[str, Any]] = {
    207: {"model": RegistrationResult, "description": "Some items were refused; see results"},
    409: problem_doc(
        "A request with the same Idempotency-Key is still in progress, or a concurrent request "
        "changed the same rows: retry after `Retry-After` seconds",
        retry_after=True,
    ),
    413: problem_doc("More than 1,000 items or a body over 2 MB: nothing stored"),
    422: problem_doc("Invalid body, or an Idempotency-Key reused with another body"),
}


@router.post(
    "/accounts/batch",
    response_model=RegistrationResult,
    status_code=200,
    responses=BATCH_DOCS,
    operation_id="upsert_accounts_batch",
)
async def upsert_accounts_batch(body: AccountBatch, call: IdempotentWrite) -> HttpResponse:
    """Create or replace up to 1,000 accounts: 200 when every item succeeded, else 207."""
    check_size(body.accounts, "accounts")
    outcomes = await accounts.upsert_accounts(
        call.session, call.subject.workspace_id, body.accounts
    )
    result = registration_result(outcomes)
    return call.idempotency.respond(result, 207 if result.failed else 200)


@router.post(
    "/stakeholders/batch",
    response_model=RegistrationResult,
    status_code=200,
    responses=BATCH_DOCS,
    operation_id="upsert_stakeholders_batch",
    tags=["stakeholders"],
)
async def upsert_stakeholders_batch(body: StakeholderBatch, call: IdempotentWrite) -> HttpResponse:
    """Create or replace up to 1,000 stakeholders: 200 when every item succeeded, else 207."""
    check_size(body.stakeholders, "stakeholders")
    outcomes = await stakeholders.upsert_stakeholders(
        call.session, call.subject.workspace_id, body.stakeholders
    )
    result = registration_result(outcomes)
    return call.idempotency.respond(result, 207 if result.failed else 200)


@router.put(
    "/accounts/{account_id}",
    response_model=AccountRead,
    status_code=200,
    responses={201: {"model": AccountRead, "description": "Created"}},
    operation_id="upsert_account",
)
async def upsert_account(
    account_id: AccountId,
    body: AccountUpsert,
    session: SessionDep,
    auth: WriteAuth,
    response: HttpResponse,
) -> AccountRead:
    """Create (201) or replace (200) an account."""
    if account_id in RESERVED_ACCOUNT_IDS:
        message = f"{account_id!r} is reserved: /v1/accounts/{account_id} is another endpoint"
        raise Unprocessable(message, errors=[field_error(["path", "account_id"], message)])
    account, created = await accounts.upsert_account(session, auth.workspace_id, account_id, body)
    response.status_code = 201 if created else 200
    return AccountRead.model_validate(account)


@router.get("/accounts", response_model=Page[AccountRead], operation_id="list_accounts")
async def list_accounts(
    session: ReadSessionDep,
    auth: ReadAuth,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    updated_since: UpdatedSince = None,
    segment: Text = None,
    industry: Text = None,
) -> Page[AccountRead]:
    """List accounts in (updated_at, id) order, for paging and CRM sync."""
    rows, next_cursor = await accounts.list_accounts(
        session,
        auth.workspace_id,
        limit=limit,
        cursor=cursor,
        updated_since=updated_since,
        segment=segment,
        industry=industry,
    )
    return Page(data=[AccountRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/accounts/{account_id}", response_model=AccountRead, operation_id="get_account")
async def get_account(
    account_id: AccountId, session: LookupSessionDep, auth: ReadAuth
) -> AccountRead:
    """Read one account."""
    return AccountRead.model_validate(
        await accounts.get_account(session, auth.workspace_id, account_id)
    )


@router.delete("/accounts/{account_id}", status_code=204, operation_id="delete_account")
async def delete_account(account_id: AccountId, session: SessionDep, auth: WriteAuth) -> None:
    """Delete an account with its stakeholders and responses."""
    await accounts.delete_account(session, auth.workspace_id, account_id)


@router.put(
    "/stakeholders/{stakeholder_id}",
    response_model=StakeholderRead,
    status_code=200,
    responses={201: {"model": StakeholderRead, "description": "Created"}},
    operation_id="upsert_stakeholder",
    tags=["stakeholders"],
)
async def upsert_stakeholder(
    stakeholder_id: StakeholderId,
    body: StakeholderUpsert,
    session: SessionDep,
    auth: WriteAuth,
    response: HttpResponse,
) -> StakeholderRead:
    """Create (201) or replace (200) a stakeholder; past responses keep the role they had."""
    stakeholder, created = await stakeholders.upsert_stakeholder(
        session, auth.workspace_id, stakeholder_id, body
    )
    response.status_code = 201 if created else 200
    return StakeholderRead.model_validate(stakeholder)


@router.get(
    "/stakeholders",
    response_model=Page[StakeholderRead],
    operation_id="list_stakeholders",
    tags=["stakeholders"],
)
async def list_stakeholders(
    session: ReadSessionDep,
    auth: ReadAuth,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    updated_since: UpdatedSince = None,
    account_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    role: Role | None = None,
) -> Page[StakeholderRead]:
    """List stakeholders, optionally of one account or role."""
    rows, next_cursor = await stakeholders.list_stakeholders(
        session,
        auth.workspace_id,
        limit=limit,
        cursor=cursor,
        updated_since=updated_since,
        account_id=account_id,
        role=role,
    )
    return Page(data=[StakeholderRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/stakeholders/{stakeholder_id}",
    response_model=StakeholderRead,
    operation_id="get_stakeholder",
    tags=["stakeholders"],
)
async def get_stakeholder(
    stakeholder_id: StakeholderId, session: LookupSessionDep, auth: ReadAuth
) -> StakeholderRead:
    """Read one stakeholder."""
    return StakeholderRead.model_validate(
        await stakeholders.get_stakeholder(session, auth.workspace_id, stakeholder_id)
    )


@router.delete(
    "/stakeholders/{stakeholder_id}",
    status_code=204,
    operation_id="delete_stakeholder",
    tags=["stakeholders"],
)
async def delete_stakeholder(
    stakeholder_id: StakeholderId, session: SessionDep, auth: WriteAuth
) -> None:
    """Erase a stakeholder and every response they gave."""
    await stakeholders.delete_stakeholder(session, auth.workspace_id, stakeholder_id)
