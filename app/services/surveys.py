"""Survey definitions: stored per workspace by the caller's survey id, read by whatever shows a
survey (the public page, the widget) through `texts_for`, and by ingest for the attribute catalog.

A survey id without a definition works with the built-in texts and no catalog, so responses may
name any survey. Deleting a definition leaves the responses that name its id as they are: they
keep their `survey` and keep counting; the id just has the defaults again.
"""

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import any_, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound, Unprocessable, field_error
from app.models import Role, Survey, Workspace
from app.pagination import paginate
from app.schemas.surveys import PLACEHOLDER, SurveyDefinition, SurveyTextFields
from app.services.settings import load_settings
from app.services.upsert import upsert_by_id
from app.sql import text_array

ENGLISH = "en"

# The built-in texts, one set per locale; every text a survey can leave out is here in each.
BUILT_IN: dict[str, dict[str, str]] = {
    "en": {
        "question": "How likely are you to recommend {company} to a colleague or peer?",
        "follow_up": "What is the most important reason for your score?",
        "thank_you": "Thank you for your feedback!",
        "low_label": "Not at all likely",
        "high_label": "Extremely likely",
    },
    "de": {
        "question": "Wie wahrscheinlich ist es, dass Sie {company} einer Kollegin, einem "
        "Kollegen oder einem Geschäftspartner weiterempfehlen?",
        "follow_up": "Was ist der wichtigste Grund für Ihre Bewertung?",
        "thank_you": "Vielen Dank für Ihr Feedback!",
        "low_label": "Äußerst unwahrscheinlich",
        "high_label": "Äußerst wahrscheinlich",
    },
}


@dataclass(frozen=True, slots=True)
class AttributeText:
    key: str
    label: str
    scale: int


@dataclass(frozen=True, slots=True)
class SurveyTexts:
    """What a respondent reads, in one locale, `{company}` filled in."""

    locale: str  # the locale used: the tag asked for, its language, or "en"
    question: str
    attributes: tuple[AttributeText, ...]
    follow_up: str
    thank_you: str
    low_label: str
    high_label: str


def _family(tag: str) -> list[str]:
    """A tag and its language part, lowercase: "de-CH" -> ["de-ch", "de"]."""
    lowered = tag.lower()
    language = lowered.split("-", 1)[0]
    return [lowered] if language == lowered else [lowered, language]


def resolve_locale(definition: SurveyDefinition | None, locale: str | None) -> str:
    """The locale a survey is shown in: the exact tag if the survey or the built-in texts have
    it, else its language part, else English. Tags compare ignoring case; the answer is
    spelled as the definition (or the built-in table) spells it."""
    known = {tag.lower(): tag for tag in BUILT_IN}
    if definition is not None:
        known |= {tag.lower(): tag for tag in definition.texts}
    for candidate in _family(locale) if locale else []:
        if candidate in known:
            return known[candidate]
    return ENGLISH


def texts_for(
    definition: SurveyDefinition | None,
    *,
    role: Role | None = None,
    locale: str | None = None,
    company: str,
) -> SurveyTexts:
    """The texts to show one respondent (no database). Each text is taken from the first layer
    that has it: the survey's texts for the locale (exact tag, then its language), the survey's
    top-level texts, the built-in texts for the locale, English. Within a layer the question
    for `role` wins over the general question. `{company}` is replaced everywhere."""
    used = resolve_locale(definition, locale)
    family = _family(used)
    survey = definition or SurveyDefinition()
    by_tag = {tag.lower(): texts for tag, texts in survey.texts.items()}
    layers: list[SurveyTextFields] = [by_tag[t] for t in family if t in by_tag]
    layers.append(survey)
    built_in = [BUILT_IN[t] for t in family if t in BUILT_IN] + [BUILT_IN[ENGLISH]]

    def pick(field: str) -> str:
        for layer in layers:
            if field == "question" and role is not None and role in layer.questions_by_role:
                return layer.questions_by_role[role]
            value = getattr(layer, field)
            if value is not None:
                return str(value)
        return next(texts[field] for texts in built_in if field in texts)

    def label(key: str, fallback: str) -> str:
        for layer in layers[:-1]:
            localised = getattr(layer, "attributes", {})
            if key in localised:
                return str(localised[key])
        return fallback

    def fill(text: str) -> str:
        return text.replace(PLACEHOLDER, company)

    return SurveyTexts(
        locale=used,
        question=fill(pick("question")),
        attributes=tuple(
            AttributeText(a.key, fill(label(a.key, a.label)), a.scale) for a in survey.attributes
        ),
        follow_up=fill(pick("follow_up")),
        thank_you=fill(pick("thank_you")),
        low_label=fill(pick("low_label")),
        high_label=fill(pick("high_label")),
    )


def catalog_problem(
    attributes: Mapping[str, Any],
    definition: SurveyDefinition | None,
    loc: Sequence[str | int],
) -> Unprocessable | None:
    """Why these driver ratings do not fit the survey's catalog, or None. A catalog key must be
    an integer 1..scale; keys outside the catalog stay free, and without a definition every
    key is free."""
    if definition is None:
        return None
    errors = []
    for attribute in definition.attributes:
        if attribute.key not in attributes:
            continue
        value = attributes[attribute.key]
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not 1 <= value <= attribute.scale
        ):
            errors.append(
                field_error(
                    [*loc, "attributes", attribute.key],
                    f"expected an integer from 1 to {attribute.scale} (the survey's scale "
                    f"for {attribute.key!r})",
                )
            )
    if not errors:
        return None
    where = ".".join(str(p) for p in errors[0]["loc"][len(loc) :])
    return Unprocessable(
        f"{where} does not fit the survey's attribute catalog: {errors[0]['msg']}",
        errors=errors,
    )


def parse_definition(stored: dict[str, Any]) -> SurveyDefinition | None:
    """A stored definition, None when it no longer validates (the defaults apply)."""
    try:
        return SurveyDefinition.model_validate(stored)
    except ValidationError:
        # Only this service writes the column, through the same model; a row that no longer
        # validates (a hand edit) falls back to the defaults rather than failing every answer.
        return None


def definition_of(survey: Survey) -> SurveyDefinition:
    return parse_definition(survey.definition) or SurveyDefinition()


async def upsert_survey(
    session: AsyncSession, workspace_id: uuid.UUID, survey_id: str, definition: SurveyDefinition
) -> tuple[Survey, bool]:
    """Create or replace the definition; returns it and whether it was created."""
    return await upsert_by_id(
        session, Survey, workspace_id, survey_id, {"definition": definition.model_dump(mode="json")}
    )


async def get_survey(session: AsyncSession, workspace_id: uuid.UUID, survey_id: str) -> Survey:
    survey = await session.get(Survey, (workspace_id, survey_id))
    if survey is None:
        raise NotFound(f"survey {survey_id!r} has no definition")
    return survey


async def list_surveys(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None = None,
    updated_since: datetime | None = None,
) -> tuple[list[Survey], str | None]:
    query = select(Survey).where(Survey.workspace_id == workspace_id)
    if updated_since is not None:
        query = query.where(Survey.updated_at >= updated_since)
    return await paginate(
        session, query, updated_col=Survey.updated_at, id_col=Survey.id, limit=limit, cursor=cursor
    )


async def delete_survey(session: AsyncSession, workspace_id: uuid.UUID, survey_id: str) -> None:
    """Delete the definition only: responses naming the survey keep it and keep counting."""
    deleted = await session.scalar(
        delete(Survey)
        .where(Survey.workspace_id == workspace_id, Survey.id == survey_id)
        .returning(Survey.id)
    )
    if deleted is None:
        raise NotFound(f"survey {survey_id!r} has no definition")


async def definitions(
    session: AsyncSession, workspace_id: uuid.UUID, survey_ids: Iterable[str | None]
) -> dict[str, SurveyDefinition]:
    """The definitions of these surveys that have one, in one statement."""
    wanted = sorted({s for s in survey_ids if s is not None})
    if not wanted:
        return {}
    rows = await session.execute(
        select(Survey.id, Survey.definition).where(
            Survey.workspace_id == workspace_id, Survey.id == any_(text_array(wanted))
        )
    )
    parsed = {survey_id: parse_definition(stored) for survey_id, stored in rows}
    return {survey_id: d for survey_id, d in parsed.items() if d is not None}


async def find_definition(
    session: AsyncSession, workspace_id: uuid.UUID, survey_id: str | None
) -> SurveyDefinition | None:
    """The survey's definition, None when it has none (the defaults apply)."""
    return (await definitions(session, workspace_id, [survey_id])).get(survey_id or "")


async def company_name(session: AsyncSession, workspace_id: uuid.UUID) -> str:
    """What `{company}` reads in this workspace: the `company` setting, else its name."""
    settings = await load_settings(session, workspace_id)
    if settings.company is not None:
        return settings.company
    name = await session.scalar(select(Workspace.name).where(Workspace.id == workspace_id))
    return name or ""
