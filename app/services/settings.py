"""A workspace's settings, kept as JSON on the workspace row and read with every score.

Writes lock the workspace row first: a conditional write (If-Match) compares the tag of the
settings as they are when it holds the lock, so of two writers holding the same tag exactly
one wins, and a merge patch always applies to the latest settings.
"""

import uuid
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import (
    PreconditionFailed,
    Unprocessable,
    field_error,
    invalid_fields,
    invalid_query,
)
from app.etags import if_match_passes, strong_etag
from app.industries import Range, RoleTable, effective_table, normalise_industry
from app.merge_patch import merge_patch
from app.models import Workspace
from app.schemas.base import MAX_DEPTH
from app.schemas.settings import WorkspaceSettings
from app.scoring import CIMethod, Method
from app.services.selection import Counting, ScoreOptions, Weighting


def _parse(stored: dict[str, Any] | None) -> WorkspaceSettings:
    try:
        return WorkspaceSettings.model_validate(stored or {})
    except ValidationError:
        # Only this service writes the column, through the same model; a row that no longer
        # validates (a hand edit) must not take the workspace's scores down with it.
        return WorkspaceSettings()


async def load_settings(session: AsyncSession, workspace_id: uuid.UUID) -> WorkspaceSettings:
    stored = await session.scalar(select(Workspace.settings).where(Workspace.id == workspace_id))
    return _parse(stored)


def settings_etag(settings: WorkspaceSettings) -> str:
    """The strong ETag of the settings in effect: it changes exactly when they change."""
    return strong_etag(settings.model_dump(mode="json"))


async def _locked(
    session: AsyncSession, workspace_id: uuid.UUID, if_match: str | None
) -> WorkspaceSettings:
    """The settings, the workspace row locked until the transaction ends; 412 on a stale tag."""
    stored = await session.scalar(
        select(Workspace.settings).where(Workspace.id == workspace_id).with_for_update()
    )
    current = _parse(stored)
    if not if_match_passes(if_match, settings_etag(current)):
        raise PreconditionFailed(
            "the settings changed since the ETag in If-Match was read; "
            "GET them again and reapply your change: nothing was stored",
            headers={"ETag": settings_etag(current)},
        )
    return current


async def _store(
    session: AsyncSession, workspace_id: uuid.UUID, settings: WorkspaceSettings
) -> WorkspaceSettings:
    await session.execute(
        update(Workspace)
        .where(Workspace.id == workspace_id)
        .values(settings=settings.model_dump(mode="json"))
    )
    return settings


async def replace_settings(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    settings: WorkspaceSettings,
    *,
    if_match: str | None = None,
) -> WorkspaceSettings:
    """Store these settings whole (an absent field is its default) if If-Match allows."""
    await _locked(session, workspace_id, if_match)
    return await _store(session, workspace_id, settings)


async def patch_settings(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    patch: dict[str, Any],
    *,
    if_match: str | None = None,
) -> WorkspaceSettings:
    """Apply an RFC 7396 merge patch to the settings in effect and store the result, validated
    as a PUT body is; a null member goes back to its default."""
    if _deeper_than(patch, MAX_DEPTH):
        raise Unprocessable(
            f"the merge patch is nested deeper than {MAX_DEPTH} levels",
            errors=[field_error(["body"], "nested too deeply")],
        )
    current = await _locked(session, workspace_id, if_match)
    merged = merge_patch(current.model_dump(mode="json"), _industries_normalised(patch))
    try:
        settings = WorkspaceSettings.model_validate(merged)
    except ValidationError as exc:
        raise invalid_fields(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_input=False)]
        ) from None
    return await _store(session, workspace_id, settings)


def _industries_normalised(patch: dict[str, Any]) -> dict[str, Any]:
    """Benchmarks are keyed by normalised industry names, so a patch naming "Technology"
    changes (or removes) the stored "technology" entry."""
    out = dict(patch)
    for member in ("benchmarks", "industry_role_benchmarks"):
        table = patch.get(member)
        if isinstance(table, dict):
            out[member] = {normalise_industry(k): v for k, v in table.items()}
    return out


def _deeper_than(value: object, depth: int) -> bool:
    if not isinstance(value, dict):
        return False
    if depth <= 0:
        return True
    return any(_deeper_than(v, depth - 1) for v in value.values())


def benchmark_table(settings: WorkspaceSettings) -> dict[str, Range]:
    return effective_table(
        {k: None if v is None else Range(v.low, v.high) for k, v in settings.benchmarks.items()}
    )


def role_table(settings: WorkspaceSettings) -> RoleTable:
    return RoleTable(
        by_role={role.value: Range(r.low, r.high) for role, r in settings.role_benchmarks.items()},
        by_industry_role={
            industry: {role.value: Range(r.low, r.high) for role, r in ranges.items()}
            for industry, ranges in settings.industry_role_benchmarks.items()
        },
    )


def counting_from(
    settings: WorkspaceSettings,
    method: Method | None = None,
    ci_method: CIMethod | None = None,
    confidence: float | None = None,
    *,
    weight: str | None = None,
    account_mean: str | None = None,
) -> Counting:
    """How a score counts, from what a request asked for and the workspace's defaults."""
    chosen = method or Method(settings.default_method)
    if chosen is not Method.ACCOUNT_AS_UNIT:
        if weight is not None:
            raise invalid_query("weight", "weight applies to method=account_as_unit only")
        if account_mean is not None:
            raise invalid_query(
                "account_mean", "account_mean applies to method=account_as_unit only"
            )
    weighting = None
    if chosen is Method.ROLE_WEIGHTED or account_mean == "role_weighted":
        weighting = Weighting(
            role=settings.role_weights.model_dump(),
            job_level=settings.job_level_weights.model_dump(),
        )
    return Counting(
        method=chosen,
        weighting=weighting,
        by_revenue=weight == "revenue",
        options=ScoreOptions(
            ci_method=ci_method or settings.default_ci_method,
            confidence=settings.default_confidence if confidence is None else confidence,
            min_n=settings.min_n,
            low_n=settings.low_n,
        ),
        benchmarks=benchmark_table(settings),
        role_benchmarks=role_table(settings),
    )
