"""API keys of the caller's workspace (admin scope)."""

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi import Response as HttpResponse

from app.api.auth import AdminAuth
from app.api.idempotency import REPLAYED, REPLAYED_HEADER, IdempotentAdmin
from app.bodies import StrictRoute
from app.db import SessionDep
from app.errors import Conflict
from app.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, problem_doc
from app.services import keys

router = APIRouter(prefix="/v1", tags=["api keys"], route_class=StrictRoute)


@router.post(
    "/api-keys",
    response_model=ApiKeyCreated,
    status_code=201,
    responses={
        409: problem_doc(
            "Replay of a key creation (`Idempotent-Replayed: true`): the key exists, but its "
            "secret is never shown again; or a request with the same Idempotency-Key is still "
            "in progress (`Retry-After`)",
            retry_after=True,
            headers={REPLAYED: REPLAYED_HEADER},
        )
    },
    operation_id="create_api_key",
)
async def create_api_key(body: ApiKeyCreate, call: IdempotentAdmin) -> HttpResponse:
    """Create a key; its secret is in this answer only (a retry is told so, not shown it)."""
    key, raw = await keys.create_api_key(
        call.session, call.subject.workspace_id, scopes=body.scopes, label=body.label
    )
    created = ApiKeyCreated(**ApiKeyRead.model_validate(key).model_dump(), key=raw)
    secret_shown = Conflict(
        f"this request already created key {key.prefix}; its secret was shown only in that "
        f"answer: revoke {key.prefix} and create another if it was lost"
    )
    return call.idempotency.respond(created, 201, replay_as=secret_shown)


@router.get("/api-keys", response_model=list[ApiKeyRead], operation_id="list_api_keys")
async def list_api_keys(session: SessionDep, auth: AdminAuth) -> list[ApiKeyRead]:
    """List the workspace's keys (never their secrets)."""
    return [
        ApiKeyRead.model_validate(k) for k in await keys.list_api_keys(session, auth.workspace_id)
    ]


@router.delete(
    "/api-keys/{prefix}",
    status_code=204,
    responses={
        409: problem_doc(
            "The workspace's last active admin key (type /problems/last-admin-key): create "
            "another admin key first"
        )
    },
    operation_id="revoke_api_key",
)
async def revoke_api_key(
    prefix: Annotated[str, Path(max_length=32)], session: SessionDep, auth: AdminAuth
) -> None:
    """Revoke a key by its prefix; it stops working at once. The last admin key is kept (409)."""
    await keys.revoke_api_key(session, prefix=prefix, workspace_id=auth.workspace_id)
