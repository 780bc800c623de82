"""The workspace's settings: weights, thresholds, defaults and benchmarks (admin scope).

Every answer carries a strong ETag; PUT and PATCH honour If-Match (optional, so clients that
never send it keep working; `*` matches any), and GET answers 304 to a current If-None-Match.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi import Response as HttpResponse

from app.api.auth import AdminAuth, ReadAuth
from app.bodies import StrictRoute, parse_json
from app.db import ReadSessionDep, SessionDep
from app.errors import (
    Unprocessable,
    UnsupportedMediaType,
    field_error,
)
from app.etags import if_none_match_hits
from app.presenters.settings import settings_read
from app.schemas import problem_doc
from app.schemas.settings import SettingsRead, WorkspaceSettings
from app.services.settings import load_settings, patch_settings, replace_settings, settings_etag

router = APIRouter(prefix="/v1", tags=["settings"], route_class=StrictRoute)

MERGE_PATCH = "application/merge-patch+json"
# application/json too: many HTTP clients send it for any JSON body; JSON Patch is refused.
PATCH_TYPES = (MERGE_PATCH, "application/json")


async def current_settings(session: ReadSessionDep, auth: ReadAuth) -> WorkspaceSettings:
    return await load_settings(session, auth.workspace_id)


WorkspaceSettingsDep = Annotated[WorkspaceSettings, Depends(current_settings)]

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="the ETag the change is based on; a stale one is 412 and nothing is stored "
        "(`*` matches any; without the header the write is unconditional)",
    ),
]
IfNoneMatch = Annotated[
    str | None,
    Header(alias="If-None-Match", description="the ETag held; 304 when it is still current"),
]

ETAG_HEADER = {
    "ETag": {"description": "strong tag of these settings", "schema": {"type": "string"}}
}
WRITE_DOCS: dict[int | str, dict[str, Any]] = {
    200: {"description": "The settings now in effect", "headers": ETAG_HEADER},
    412: problem_doc("If-Match names another version of the settings: nothing was stored"),
}


def _answer(settings: WorkspaceSettings) -> HttpResponse:
    return HttpResponse(
        settings_read(settings).model_dump_json(),
        media_type="application/json",
        headers={"ETag": settings_etag(settings)},
    )


@router.get(
    "/settings",
    response_model=SettingsRead,
    responses={
        200: {"description": "The settings in effect", "headers": ETAG_HEADER},
        304: {"description": "Not modified: If-None-Match names the current ETag"},
    },
    operation_id="get_settings",
)
async def get_settings(
    session: SessionDep, auth: AdminAuth, if_none_match: IfNoneMatch = None
) -> HttpResponse:
    """The settings in effect for this workspace, with their ETag."""
    settings = await load_settings(session, auth.workspace_id)
    etag = settings_etag(settings)
    if if_none_match_hits(if_none_match, etag):
        return HttpResponse(status_code=304, headers={"ETag": etag})
    return _answer(settings)


@router.put(
    "/settings", response_model=SettingsRead, responses=WRITE_DOCS, operation_id="replace_settings"
)
async def put_settings(
    body: WorkspaceSettings, session: SessionDep, auth: AdminAuth, if_match: IfMatch = None
) -> HttpResponse:
    """Replace the settings; an absent field takes its default. Stored responses never change."""
    return _answer(await replace_settings(session, auth.workspace_id, body, if_match=if_match))


PATCH_BODY = {
    "description": "an RFC 7396 merge patch: the members to change; nested objects merge, "
    "null puts a member back to its default (in `benchmarks`: back to the built-in range)",
    "allOf": [{"$ref": "#/components/schemas/WorkspaceSettings"}],
    "examples": [{"role_weights": {"decision_maker": 4}, "low_n": None}],
}


@router.patch(
    "/settings",
    response_model=SettingsRead,
    responses={
        **WRITE_DOCS,
        415: problem_doc(f"The body is not {MERGE_PATCH} (or application/json)"),
        422: problem_doc("The patched settings are invalid: `errors` names each field"),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {media: {"schema": PATCH_BODY} for media in PATCH_TYPES},
        }
    },
    operation_id="patch_settings",
)
async def patch_settings_route(
    request: Request, session: SessionDep, auth: AdminAuth, if_match: IfMatch = None
) -> HttpResponse:
    """Change only the settings a JSON merge patch (RFC 7396) names; the rest stay as they are."""
    patch = await _merge_patch_body(request)
    settings = await patch_settings(session, auth.workspace_id, patch, if_match=if_match)
    return _answer(settings)


async def _merge_patch_body(request: Request) -> dict[str, Any]:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in PATCH_TYPES:
        raise UnsupportedMediaType(
            f"send the patch as {MERGE_PATCH} (RFC 7396 JSON merge patch)",
            headers={"Accept-Patch": MERGE_PATCH},
        )
    raw = await request.body()
    try:
        patch = parse_json(raw, request.headers.get("content-type"))
    except ValueError:
        raise Unprocessable(
            "the body is not valid JSON", errors=[field_error(["body"], "invalid JSON")]
        ) from None
    if not isinstance(patch, dict):
        raise Unprocessable(
            "a merge patch of the settings must be a JSON object",
            errors=[field_error(["body"], "expected an object")],
        )
    return patch
