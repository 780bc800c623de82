"""API keys of the caller's workspace (admin scope)."""

from typing import Annotated

from fastapi import APIRouter, Path

from app.api.deps import AdminAuth
from app.db import SessionDep
from app.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from app.services import keys

router = APIRouter(prefix="/v1", tags=["api keys"])


@router.post(
    "/api-keys", response_model=ApiKeyCreated, status_code=201, operation_id="create_api_key"
)
async def create_api_key(body: ApiKeyCreate, session: SessionDep, auth: AdminAuth) -> ApiKeyCreated:
    """Create a key; its secret is in this answer only."""
    key, raw = await keys.create_api_key(
        session, auth.workspace_id, scopes=body.scopes, label=body.label
    )
    return ApiKeyCreated(**ApiKeyRead.model_validate(key).model_dump(), key=raw)


@router.get("/api-keys", response_model=list[ApiKeyRead], operation_id="list_api_keys")
async def list_api_keys(session: SessionDep, auth: AdminAuth) -> list[ApiKeyRead]:
    """List the workspace's keys (never their secrets)."""
    return [
        ApiKeyRead.model_validate(k) for k in await keys.list_api_keys(session, auth.workspace_id)
    ]


@router.delete("/api-keys/{prefix}", status_code=204, operation_id="revoke_api_key")
async def revoke_api_key(
    prefix: Annotated[str, Path(max_length=32)], session: SessionDep, auth: AdminAuth
) -> None:
    """Revoke a key by its prefix; it stops working at once."""
    await keys.revoke_api_key(session, prefix=prefix, workspace_id=auth.workspace_id)
