"""Survey definitions without a database: validation, the texts a respondent reads
(role overrides, locale fallback, {company}), and the attribute catalog check."""

from typing import Any

import pytest
from pydantic import ValidationError

from app.models import Role
from app.schemas.surveys import SurveyDefinition
from app.services.surveys import (
    BUILT_IN,
    AttributeText,
    SurveyTexts,
    catalog_problem,
    resolve_locale,
    texts_for,
)

EN = BUILT_IN["en"]
DE = BUILT_IN["de"]


def define(**body: Any) -> SurveyDefinition:
    return SurveyDefinition.model_validate(body)


def locs(body: dict[str, Any]) -> list[tuple[str | int, ...]]:
    try:
        SurveyDefinition.model_validate(body)
    except ValidationError as exc:
        return [e["loc"] for e in exc.errors()]
    raise AssertionError("valid")


class TestDefaults:
    def test_no_definition_gives_the_english_defaults_with_the_company(self) -> None:
        assert texts_for(None, company="Acme") == SurveyTexts(
            locale="en",
            question="How likely are you to recommend Acme to a colleague or peer?",
            attributes=(),
            follow_up=EN["follow_up"],
            thank_you=EN["thank_you"],
            low_label=EN["low_label"],
            high_label=EN["high_label"],
        )

    def test_an_empty_definition_is_the_same_as_none(self) -> None:
        for locale in (None, "en", "de", "fr", "de-AT"):
            assert texts_for(define(), locale=locale, company="A") == texts_for(
                None, locale=locale, company="A"
            )

    def test_german_is_built_in_for_every_default_text(self) -> None:
        texts = texts_for(None, locale="de", company="Acme")
        assert texts.locale == "de"
        assert texts.question == DE["question"].replace("{company}", "Acme")
        assert "Acme" in texts.question
        assert (texts.follow_up, texts.thank_you, texts.low_label, texts.high_label) == (
            DE["follow_up"],
            DE["thank_you"],
            DE["low_label"],
            DE["high_label"],
        )
        assert set(BUILT_IN["de"]) == set(BUILT_IN["en"])

    def test_a_role_without_an_override_gets_the_question(self) -> None:
        survey = define(question="Q {company}?")
        assert texts_for(survey, role=Role.USER, company="Acme").question == "Q Acme?"


class TestLocaleFallback:
    @pytest.mark.parametrize(
        ("asked", "used"),
        [
            ("de", "de"),
            ("de-CH", "de"),
            ("DE-ch", "de"),
            ("fr", "en"),
            ("fr-CA", "en"),
            ("en-GB", "en"),
            (None, "en"),
            ("", "en"),
        ],
    )
    def test_without_survey_texts(self, asked: str | None, used: str) -> None:
        assert resolve_locale(None, asked) == used
        assert texts_for(None, locale=asked, company="A").locale == used

    def test_exact_tag_then_language_then_english(self) -> None:
        survey = define(texts={"fr": {"question": "FR"}, "de-CH": {"question": "CH"}})
        assert texts_for(survey, locale="de-CH", company="A").locale == "de-CH"
        assert texts_for(survey, locale="de-ch", company="A").question == "CH"
        assert texts_for(survey, locale="de-AT", company="A").locale == "de"
        assert texts_for(survey, locale="fr-BE", company="A").question == "FR"
        assert texts_for(survey, locale="fr-BE", company="A").locale == "fr"
        assert texts_for(survey, locale="it", company="A").locale == "en"

    def test_an_exact_tag_fills_its_gaps_from_its_language(self) -> None:
        survey = define(
            texts={"de": {"thank_you": "Danke, {company}!"}, "de-CH": {"question": "Grüezi?"}}
        )
        texts = texts_for(survey, locale="de-CH", company="Acme")
        assert (texts.question, texts.thank_you, texts.follow_up) == (
            "Grüezi?",
            "Danke, Acme!",
            DE["follow_up"],
        )

    def test_an_extra_locale_falls_back_to_the_top_level_then_to_english(self) -> None:
        survey = define(
            follow_up="Why?", texts={"fr": {"question": "Recommanderiez-vous {company} ?"}}
        )
        texts = texts_for(survey, locale="fr", company="Acme")
        assert texts.locale == "fr"
        assert texts.question == "Recommanderiez-vous Acme ?"
        assert texts.follow_up == "Why?"
        assert texts.thank_you == EN["thank_you"]

    def test_top_level_texts_win_over_the_built_in_texts_of_any_locale(self) -> None:
        survey = define(thank_you="Thanks!")
        assert texts_for(survey, locale="de", company="A").thank_you == "Thanks!"
        assert texts_for(survey, locale="de", company="A").follow_up == DE["follow_up"]

    def test_only_overriding_some_texts_keeps_the_others_built_in(self) -> None:
        survey = define(texts={"de": {"follow_up": "Warum?"}})
        texts = texts_for(survey, locale="de", company="Acme")
        assert texts.follow_up == "Warum?"
        assert texts.question == DE["question"].replace("{company}", "Acme")
        assert texts_for(survey, locale="en", company="Acme").follow_up == EN["follow_up"]


class TestRoleOverrides:
    SURVEY = define(
        question="General {company}?",
        questions_by_role={"decision_maker": "Exec {company}?"},
        texts={
            "de": {"question": "Allgemein?"},
            "fr": {"questions_by_role": {"decision_maker": "Dirigeant ?"}},
        },
    )

    def test_the_role_override_wins_over_the_question(self) -> None:
        assert texts_for(self.SURVEY, role=Role.DECISION_MAKER, company="A").question == "Exec A?"
        assert texts_for(self.SURVEY, role=Role.INFLUENCER, company="A").question == "General A?"
        assert texts_for(self.SURVEY, role=None, company="A").question == "General A?"

    def test_a_locales_question_wins_over_a_top_level_role_override(self) -> None:
        texts = texts_for(self.SURVEY, role=Role.DECISION_MAKER, locale="de", company="A")
        assert texts.question == "Allgemein?"

    def test_a_locales_role_override_wins_in_that_locale(self) -> None:
        survey = self.SURVEY
        assert texts_for(survey, role=Role.DECISION_MAKER, locale="fr", company="A").question == (
            "Dirigeant ?"
        )
        assert texts_for(survey, role=Role.USER, locale="fr", company="A").question == "General A?"

    def test_role_overrides_alone_keep_the_default_question_for_other_roles(self) -> None:
        survey = define(questions_by_role={"user": "Do you like the product?"})
        assert texts_for(survey, role=Role.USER, company="A").question == "Do you like the product?"
        assert texts_for(survey, role=Role.OTHER, locale="de", company="A").question == (
            DE["question"].replace("{company}", "A")
        )


class TestAttributes:
    def test_labels_scales_and_translations(self) -> None:
        survey = define(
            attributes=[
                {"key": "support", "label": "Support at {company}"},
                {"key": "onboarding", "label": "Onboarding", "scale": 7},
            ],
            texts={"de": {"attributes": {"onboarding": "Einführung"}}},
        )
        assert texts_for(survey, company="Acme").attributes == (
            AttributeText("support", "Support at Acme", 5),
            AttributeText("onboarding", "Onboarding", 7),
        )
        assert texts_for(survey, locale="de-AT", company="Acme").attributes == (
            AttributeText("support", "Support at Acme", 5),
            AttributeText("onboarding", "Einführung", 7),
        )


class TestValidation:
    def test_a_full_definition_is_valid(self) -> None:
        survey = define(
            question="Q {company}?",
            questions_by_role={role.value: f"{role.value}?" for role in Role},
            attributes=[{"key": f"a{i}", "label": f"A{i}", "scale": 2 + i % 9} for i in range(20)],
            follow_up="Why?",
            thank_you="Thanks",
            low_label="No",
            high_label="Yes",
            texts={"de": {"question": "F?"}, "zh-Hant-TW": {"follow_up": "?"}, "es-419": {}},
        )
        assert len(survey.attributes) == 20

    @pytest.mark.parametrize(
        ("body", "loc"),
        [
            ({"questoin": "typo"}, ("questoin",)),
            ({"question": ""}, ("question",)),
            ({"question": "   "}, ("question",)),
            ({"question": "x" * 501}, ("question",)),
            ({"question": 5}, ("question",)),
            ({"thank_you": "x" * 1001}, ("thank_you",)),
            ({"questions_by_role": {"ceo": "Q?"}}, ("questions_by_role", "ceo", "[key]")),
            ({"attributes": [{"key": "a b", "label": "A"}]}, ("attributes", 0, "key")),
            ({"attributes": [{"key": "a"}]}, ("attributes", 0, "label")),
            ({"attributes": [{"key": "a", "label": "A", "scale": 1}]}, ("attributes", 0, "scale")),
            ({"attributes": [{"key": "a", "label": "A", "scale": 11}]}, ("attributes", 0, "scale")),
            (
                {"attributes": [{"key": "a", "label": "A", "scale": "5"}]},
                ("attributes", 0, "scale"),
            ),
            (
                {"attributes": [{"key": "a", "label": "A", "scale": 5.0}]},
                ("attributes", 0, "scale"),
            ),
            (
                {"attributes": [{"key": "a", "label": "A", "scale": True}]},
                ("attributes", 0, "scale"),
            ),
            (
                {"attributes": [{"key": "a", "label": "A", "weight": 2}]},
                ("attributes", 0, "weight"),
            ),
            (
                {"attributes": [{"key": "a", "label": "A"}, {"key": "a", "label": "B"}]},
                ("attributes",),
            ),
            (
                {"attributes": [{"key": f"a{i}", "label": "A"} for i in range(21)]},
                ("attributes",),
            ),
            ({"texts": {"english": {}}}, ("texts", "english", "[key]")),
            ({"texts": {"de_DE": {}}}, ("texts", "de_DE", "[key]")),
            ({"texts": {"de": {"questoin": "x"}}}, ("texts", "de", "questoin")),
            ({"texts": {"de": {}, "DE": {}}}, ("texts",)),
            ({"texts": {"de": {"attributes": {"support": "Support"}}}}, ("texts",)),
            (
                {"texts": {f"x{chr(97 + i // 26)}{chr(97 + i % 26)}": {} for i in range(51)}},
                ("texts",),
            ),
        ],
    )
    def test_refused_naming_the_field(self, body: dict[str, Any], loc: tuple[Any, ...]) -> None:
        assert locs(body) == [loc]

    @pytest.mark.parametrize(
        ("field", "text"),
        [
            ("question", "Recommend {company_name}?"),
            ("question", "Recommend {name}?"),
            ("question", "Recommend {{company}}?"),
            ("question", "Recommend {Company}?"),
            ("question", "Unclosed {company"),
            ("question", "Stray } brace"),
            ("follow_up", "Hi {first_name}, why?"),
            ("thank_you", "{}"),
            ("low_label", "{x}"),
        ],
    )
    def test_unknown_placeholders_are_refused(self, field: str, text: str) -> None:
        for body, loc in (
            ({field: text}, (field,)),
            ({"texts": {"de": {field: text}}}, ("texts", "de", field)),
        ):
            with pytest.raises(ValidationError) as caught:
                SurveyDefinition.model_validate(body)
            [error] = caught.value.errors()
            assert error["loc"] == loc
            assert "{company} is the only placeholder" in error["msg"]

    def test_an_unknown_placeholder_in_an_attribute_label_is_refused(self) -> None:
        assert locs({"attributes": [{"key": "a", "label": "{team}"}]}) == [
            ("attributes", 0, "label")
        ]

    def test_company_may_appear_anywhere_and_more_than_once(self) -> None:
        survey = define(question="{company}? {company}!")
        assert texts_for(survey, company="Acme").question == "Acme? Acme!"

    def test_a_company_name_with_braces_is_filled_in_verbatim(self) -> None:
        assert texts_for(define(question="{company}?"), company="{x}").question == "{x}?"


class TestCatalog:
    SURVEY = define(
        attributes=[{"key": "support", "label": "S"}, {"key": "ease", "label": "E", "scale": 3}]
    )

    @pytest.mark.parametrize(
        "attributes",
        [{}, {"support": 1}, {"support": 5, "ease": 3}, {"free": "anything", "other": 9.5}],
    )
    def test_fitting_ratings_pass(self, attributes: dict[str, Any]) -> None:
        assert catalog_problem(attributes, self.SURVEY, ["body"]) is None

    @pytest.mark.parametrize("value", [0, 6, -1, 4.0, 4.5, True, "4", None])
    def test_a_catalog_key_needs_an_integer_on_its_scale(self, value: Any) -> None:
        problem = catalog_problem({"support": value, "free": 99}, self.SURVEY, ["body"])
        assert problem is not None
        assert problem.status == 422
        assert problem.body()["errors"] == [
            {
                "loc": ["body", "attributes", "support"],
                "msg": "expected an integer from 1 to 5 (the survey's scale for 'support')",
            }
        ]

    def test_each_bad_key_is_named(self) -> None:
        problem = catalog_problem({"support": 9, "ease": 4}, self.SURVEY, ["body", "responses", 3])
        assert problem is not None
        assert [e["loc"] for e in problem.body()["errors"]] == [
            ["body", "responses", 3, "attributes", "support"],
            ["body", "responses", 3, "attributes", "ease"],
        ]
        assert problem.body()["detail"].startswith("attributes.support does not fit")

    def test_without_a_definition_every_key_is_free(self) -> None:
        assert catalog_problem({"support": 99}, None, ["body"]) is None
