"""Which case rules an answer matches: pure, so the rules are tested without a database.

Rules are tried in their order; an answer opens (or joins) at most one case of each kind, under
the first rule of that kind it matches.
"""

import re
from dataclasses import dataclass
from functools import lru_cache

from app.models import CaseKind
from app.schemas.case_rules import (
    AdvocacyRule,
    CaseRule,
    DetractorRule,
    FellCategoryRule,
    KeywordRule,
    PassiveOrLowerRule,
)
from app.scoring import Category, classify, rises


@dataclass(frozen=True, slots=True)
class Trigger:
    """What the rules look at in an answer: the score, the role it was given in, the comment,
    and the category of the stakeholder's previous counted answer (None: their first)."""

    score: int
    role: str
    comment: str | None = None
    previous: Category | None = None


def rule_kind(rule: CaseRule) -> CaseKind:
    return CaseKind.ADVOCACY if isinstance(rule, AdvocacyRule) else CaseKind.RECOVERY


@lru_cache(maxsize=1024)
def _keyword_pattern(keyword: str) -> re.Pattern[str]:
    # A whole word or phrase: not inside a longer word, any run of spaces between its words.
    words = r"\s+".join(re.escape(word) for word in keyword.split())
    return re.compile(rf"(?<!\w){words}(?!\w)", re.IGNORECASE)


def mentions(comment: str | None, keywords: list[str]) -> bool:
    """Whether the comment holds one of the keywords as a whole word or phrase, in any case."""
    if not comment:
        return False
    return any(_keyword_pattern(k).search(comment) for k in keywords)


def matches(rule: CaseRule, trigger: Trigger) -> bool:
    if rule.roles is not None and trigger.role not in rule.roles:
        return False
    category = classify(trigger.score)
    if isinstance(rule, DetractorRule):
        return category is Category.DETRACTOR
    if isinstance(rule, PassiveOrLowerRule):
        return category is not Category.PROMOTER
    if isinstance(rule, FellCategoryRule):
        return trigger.previous is not None and rises(category, trigger.previous)
    if isinstance(rule, KeywordRule):
        return mentions(trigger.comment, rule.keywords)
    return category is Category.PROMOTER


def matching_rules(rules: list[CaseRule], trigger: Trigger) -> dict[CaseKind, CaseRule]:
    """The first rule of each kind the answer matches."""
    found: dict[CaseKind, CaseRule] = {}
    for rule in rules:
        kind = rule_kind(rule)
        if kind not in found and matches(rule, trigger):
            found[kind] = rule
    return found


def needs_previous(rules: list[CaseRule]) -> bool:
    """Whether any rule looks at the stakeholder's previous answer (worth a query)."""
    return any(isinstance(rule, FellCategoryRule) for rule in rules)
