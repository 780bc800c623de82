"""Which case rules an answer matches (app.services.case_matching), without a database."""

import pytest
from pydantic import TypeAdapter

from app.models import CaseKind
from app.schemas.case_rules import CaseRule, default_case_rules
from app.scoring import Category
from app.services.case_matching import Trigger, matching_rules, mentions

RULES = TypeAdapter(list[CaseRule])


def _rules(*rules: dict[str, object]) -> list[CaseRule]:
    return RULES.validate_python([{"sla_hours": 1, **r} for r in rules])


@pytest.mark.parametrize(
    ("score", "role", "expected"),
    [
        (0, "user", {CaseKind.RECOVERY: "detractor"}),
        (6, "decision_maker", {CaseKind.RECOVERY: "detractor"}),
        (7, "decision_maker", {CaseKind.RECOVERY: "decision_maker_passive"}),
        (8, "decision_maker", {CaseKind.RECOVERY: "decision_maker_passive"}),
        (8, "influencer", {}),
        (7, "user", {}),
        (9, "decision_maker", {CaseKind.ADVOCACY: "advocacy"}),
        (10, "influencer", {CaseKind.ADVOCACY: "advocacy"}),
        (10, "user", {}),
        (9, "other", {}),
    ],
)
def test_the_default_rules(score: int, role: str, expected: dict[CaseKind, str]) -> None:
    found = matching_rules(default_case_rules(), Trigger(score, role))

    assert {kind: rule.id for kind, rule in found.items()} == expected


@pytest.mark.parametrize(
    ("previous", "score", "fell"),
    [
        (None, 0, False),
        (Category.PROMOTER, 8, True),
        (Category.PROMOTER, 3, True),
        (Category.PASSIVE, 6, True),
        (Category.PASSIVE, 7, False),
        (Category.DETRACTOR, 0, False),
        (Category.PASSIVE, 10, False),
    ],
)
def test_falling_a_category(previous: Category | None, score: int, fell: bool) -> None:
    rules = _rules({"id": "fell", "kind": "fell_category"})

    assert bool(matching_rules(rules, Trigger(score, "user", previous=previous))) is fell


@pytest.mark.parametrize(
    ("comment", "found"),
    [
        ("We will CANCEL.", True),
        ("cancel", True),
        ("(cancel)", True),
        ("cancellation pending", False),
        ("uncancel", False),
        ("it is too   slow", True),
        ("too slowly", False),
        ("", False),
        (None, False),
        ("Kündigung erwogen", True),
    ],
)
def test_keywords_are_whole_words_in_any_case(comment: str | None, found: bool) -> None:
    assert mentions(comment, ["cancel", "too slow", "kündigung"]) is found


def test_roles_restrict_any_kind() -> None:
    rules = _rules({"id": "exec", "kind": "detractor", "roles": ["decision_maker"]})

    assert matching_rules(rules, Trigger(2, "user")) == {}
    assert list(matching_rules(rules, Trigger(2, "decision_maker"))) == [CaseKind.RECOVERY]


def test_the_first_rule_of_each_kind_wins() -> None:
    rules = _rules(
        {"id": "words", "kind": "keyword", "keywords": ["price"]},
        {"id": "low", "kind": "detractor"},
        {"id": "fans", "kind": "advocacy", "roles": ["user"]},
        {"id": "fans2", "kind": "advocacy", "roles": ["user"]},
    )

    assert {k: r.id for k, r in matching_rules(rules, Trigger(3, "user", "the price")).items()} == {
        CaseKind.RECOVERY: "words"
    }
    assert {k: r.id for k, r in matching_rules(rules, Trigger(9, "user", "price")).items()} == {
        CaseKind.RECOVERY: "words",
        CaseKind.ADVOCACY: "fans",
    }
