"""Follow-up case rules (workspace settings `case_rules`): which answers open a case, and its SLA.

Rules are tried in their order; the first recovery rule an answer matches opens (or joins) the
stakeholder's open recovery case, and the first advocacy rule their open advocacy case.
"""

import re
from collections.abc import Callable, Hashable
from typing import Annotated, Literal, TypeVar

from pydantic import AfterValidator, Field, StringConstraints

from app.models import Role
from app.schemas.base import Strict

RULE_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
RuleId = Annotated[str, StringConstraints(pattern=RULE_ID_PATTERN)]
SlaHours = Annotated[int, Field(strict=True, ge=1, le=8760, description="hours to act, 1-8760")]
KEY_ROLES = [Role.DECISION_MAKER, Role.INFLUENCER]
T = TypeVar("T")


def _once_each(what: str, key: Callable[[T], Hashable]) -> AfterValidator:
    """A list validator: no two items with the same key."""

    def check(items: list[T]) -> list[T]:
        seen: set[Hashable] = set()
        for item in items:
            if key(item) in seen:
                raise ValueError(f"the {what} {key(item)!r} is used twice")
            seen.add(key(item))
        return items

    return AfterValidator(check)


Roles = Annotated[
    list[Role], Field(min_length=1, max_length=4), _once_each("role", lambda r: r.value)
]
_ANY_ROLE = "the roles it applies to; null: every role"


def _word(keyword: str) -> str:
    if not re.search(r"\w", keyword):
        raise ValueError("a keyword needs at least one letter or digit")
    return keyword


Keyword = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_word),
]


class _Rule(Strict):
    id: RuleId = Field(description="names the rule on the cases it opens (`rule` filter)")
    sla_hours: SlaHours


class DetractorRule(_Rule):
    """A detractor (0-6)."""

    kind: Literal["detractor"]
    roles: Roles | None = Field(None, description=_ANY_ROLE)


class PassiveOrLowerRule(_Rule):
    """A passive or a detractor (0-8) in one of `roles`: key people who are not promoters."""

    kind: Literal["passive_or_lower"]
    roles: Roles = Field(default_factory=lambda: list(KEY_ROLES))


class FellCategoryRule(_Rule):
    """An answer in a lower category than the stakeholder's previous counted answer."""

    kind: Literal["fell_category"]
    roles: Roles | None = Field(None, description=_ANY_ROLE)


class KeywordRule(_Rule):
    """A comment holding one of `keywords` as a whole word or phrase, in any case."""

    kind: Literal["keyword"]
    keywords: Annotated[list[Keyword], Field(min_length=1, max_length=100)]
    roles: Roles | None = Field(None, description=_ANY_ROLE)


class AdvocacyRule(_Rule):
    """A promoter (9-10) in one of `roles`: ask for a reference or a testimonial, keep them."""

    kind: Literal["advocacy"]
    roles: Roles = Field(default_factory=lambda: list(KEY_ROLES))


CaseRule = Annotated[
    DetractorRule | PassiveOrLowerRule | FellCategoryRule | KeywordRule | AdvocacyRule,
    Field(discriminator="kind"),
]
RECOVERY_KINDS = frozenset({"detractor", "passive_or_lower", "fell_category", "keyword"})


CaseRules = Annotated[list[CaseRule], Field(max_length=50), _once_each("rule id", lambda r: r.id)]


def default_case_rules() -> list[CaseRule]:
    """Detractors and decision-maker passives within 48 hours; key promoters within a week."""
    return [
        DetractorRule(id="detractor", kind="detractor", sla_hours=48),
        PassiveOrLowerRule(
            id="decision_maker_passive",
            kind="passive_or_lower",
            roles=[Role.DECISION_MAKER],
            sla_hours=48,
        ),
        AdvocacyRule(id="advocacy", kind="advocacy", sla_hours=168),
    ]
