"""The authenticator factory: allowed kinds of subject and scopes, on a route of its own."""

import uuid
from dataclasses import dataclass
from typing import Annotated, ClassVar

import httpx
import pytest
from fastapi import Depends, FastAPI

from app.api.auth import ApiKeySubject, authenticator, get_subject
from app.errors import install_error_handlers
from app.models import Scope

WORKSPACE = uuid.UUID(int=1)


@dataclass(frozen=True, slots=True)
class OtherSubject:
    """Stands in for a second kind of caller (an invitation token, later)."""

    kind: ClassVar[str] = "invitation"
    workspace_id: uuid.UUID
    scopes: frozenset[Scope] = frozenset()


def _app(subject: object) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    write = authenticator((ApiKeySubject,), scopes=frozenset({Scope.WRITE}))

    @app.get("/write")
    async def needs_write(who: Annotated[ApiKeySubject, Depends(write)]) -> dict[str, str]:
        return {"workspace_id": str(who.workspace_id)}

    app.dependency_overrides[get_subject] = lambda: subject
    return app


async def _get(subject: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app(subject))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/write")


def _key(*scopes: Scope) -> ApiKeySubject:
    return ApiKeySubject(WORKSPACE, uuid.UUID(int=2), frozenset(scopes), "nps_test")


async def test_an_allowed_subject_with_the_scope_passes() -> None:
    r = await _get(_key(Scope.READ, Scope.WRITE))
    assert (r.status_code, r.json()) == (200, {"workspace_id": str(WORKSPACE)})


async def test_no_subject_is_401_with_a_challenge() -> None:
    r = await _get(None)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["detail"] == "send an API key as `Authorization: Bearer <key>`"


async def test_a_missing_scope_is_403_naming_it() -> None:
    r = await _get(_key(Scope.READ))
    assert r.status_code == 403
    assert r.json()["detail"] == "this API key does not have the 'write' scope"


async def test_a_subject_of_another_kind_is_403() -> None:
    r = await _get(OtherSubject(WORKSPACE, frozenset({Scope.WRITE})))
    assert r.status_code == 403
    assert r.json()["detail"] == "an invitation cannot call this endpoint"


@pytest.mark.parametrize("key", [_key(Scope.READ), _key(Scope.ADMIN)])
def test_an_api_key_keeps_idempotency_keys_workspace_wide(key: ApiKeySubject) -> None:
    assert key.idempotency_key("retry-1") == "retry-1"
