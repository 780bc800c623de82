"""Survey definitions: the question (with overrides per role), the experience attributes to rate,
the follow-up and thank-you texts, and their translations per locale."""

import re
from datetime import datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from app.models import Role
from app.schemas.base import ClientId, Strict

PLACEHOLDER = "{company}"
_BRACED = re.compile(r"\{[^{}]*\}?|\}")
MAX_ATTRIBUTES = 20
MAX_LOCALES = 50
# BCP 47 in practice: a 2-3 letter language, then script, region and variant subtags.
LOCALE_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,4}$"


def _only_company(value: str) -> str:
    """`{company}` is the one placeholder; any other brace is refused rather than shown raw."""
    rest = value.replace(PLACEHOLDER, "")
    found = _BRACED.search(rest)
    if found is not None:
        raise ValueError(
            f"unknown placeholder {found.group()!r}: {PLACEHOLDER} is the only placeholder"
        )
    return value


Question = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
    AfterValidator(_only_company),
]
AttributeLabel = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_only_company),
]
LongText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=1000),
    AfterValidator(_only_company),
]
LocaleTag = Annotated[str, StringConstraints(pattern=LOCALE_PATTERN, max_length=35)]
RoleQuestions = Annotated[dict[Role, Question], Field(description="a question per role")]


class SurveyAttribute(Strict):
    """An experience attribute to rate with an integer 1..scale: an entry of the driver catalog."""

    key: ClientId = Field(description="the key responses use in `attributes`, e.g. `support`")
    label: AttributeLabel = Field(description="what the respondent reads, e.g. 'Support'")
    scale: int = Field(5, strict=True, ge=2, le=10, description="ratings are 1..scale")


class SurveyTextFields(Strict):
    """Texts a survey may set; an absent one falls back (see SurveyDefinition)."""

    question: Question | None = Field(
        default=None, description=f"the 0-10 question; {PLACEHOLDER} is filled in"
    )
    questions_by_role: RoleQuestions = Field(default_factory=dict)
    follow_up: Question | None = Field(default=None, description="the comment question")
    thank_you: LongText | None = Field(default=None, description="shown after the answer")
    low_label: AttributeLabel | None = Field(default=None, description="the label under 0")
    high_label: AttributeLabel | None = Field(default=None, description="the label under 10")


class LocaleTexts(SurveyTextFields):
    """The texts in one locale; `attributes` maps catalog keys to their label in this locale."""

    attributes: Annotated[dict[ClientId, AttributeLabel], Field(max_length=MAX_ATTRIBUTES)] = Field(
        default_factory=dict
    )


class SurveyDefinition(SurveyTextFields):
    """The body of PUT /v1/surveys/{survey_id}, which replaces the definition.

    Texts are looked up per field: the locale's own `texts` (exact tag, then its language), then
    the top-level texts (the survey's own wording, for locales that do not translate it), then
    the built-in texts of that locale (English and German), then English. In each layer a
    question for the respondent's role wins over the general question.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "question": "How likely are you to recommend {company} to a peer?",
                    "questions_by_role": {
                        "decision_maker": "How likely are you to recommend {company} to "
                        "another executive?"
                    },
                    "attributes": [
                        {"key": "support", "label": "Support"},
                        {"key": "onboarding", "label": "Onboarding", "scale": 7},
                    ],
                    "texts": {
                        "de": {
                            "question": "Wie wahrscheinlich ist es, dass Sie {company} "
                            "weiterempfehlen?",
                            "attributes": {"support": "Support", "onboarding": "Einführung"},
                        }
                    },
                }
            ]
        }
    )

    attributes: Annotated[list[SurveyAttribute], Field(max_length=MAX_ATTRIBUTES)] = Field(
        default_factory=list,
        description="the experience attributes to rate; keys unique",
    )
    texts: Annotated[dict[LocaleTag, LocaleTexts], Field(max_length=MAX_LOCALES)] = Field(
        default_factory=dict,
        description="texts per BCP 47 locale; English and German are built in",
    )

    @field_validator("attributes")
    @classmethod
    def _keys_unique(cls, attributes: list[SurveyAttribute]) -> list[SurveyAttribute]:
        keys: set[str] = set()
        for attribute in attributes:
            if attribute.key in keys:
                raise ValueError(f"attribute key {attribute.key!r} appears twice")
            keys.add(attribute.key)
        return attributes

    @field_validator("texts")
    @classmethod
    def _texts_consistent(
        cls, texts: dict[str, LocaleTexts], info: ValidationInfo
    ) -> dict[str, LocaleTexts]:
        # Without valid attributes (reported on their own) there is no catalog to check against.
        keys = {a.key for a in info.data["attributes"]} if "attributes" in info.data else None
        tags: set[str] = set()
        for tag, localised in texts.items():
            if tag.lower() in tags:
                raise ValueError(f"locale {tag!r} appears twice (tags ignore case)")
            tags.add(tag.lower())
            unknown = [] if keys is None else sorted(set(localised.attributes) - keys)
            if unknown:
                raise ValueError(
                    f"texts.{tag}.attributes names {unknown[0]!r}, which is not an attribute key"
                )
        return texts


class SurveyRead(BaseModel):
    """A stored definition; a null text means the built-in default (see SurveyDefinition)."""

    id: str
    question: str | None
    questions_by_role: dict[Role, str]
    attributes: list[SurveyAttribute]
    follow_up: str | None
    thank_you: str | None
    low_label: str | None
    high_label: str | None
    texts: dict[str, LocaleTexts]
    created_at: datetime
    updated_at: datetime
