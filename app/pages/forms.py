"""The survey form as a browser posts it (application/x-www-form-urlencoded), turned into the
body of the public answer, and the field problems a refused answer shows the person.

A form carries only strings, so the form's own encoding is decoded here: a score or a rating is
its decimal digits ("9"), never "9.0", " 9", "+9" or "true"; an empty comment or an unrated
attribute is absent. What a number may be (0-10, 1 to the attribute's scale) is then decided by
the same schema and service as the JSON call, so the page and the API cannot disagree. A field
the form does not have, or one sent twice, is a tampered form and is refused.

The form is read as UTF-8 only (`urlencoded_form`): Starlette decodes a form's raw bytes as
Latin-1 and its percent-escapes with replacement characters, so a body in another encoding
would be stored garbled; it is refused (400, or 415 for a declared charset) instead.
"""

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import FormData, UploadFile

from app.bodies import InvalidEncoding, utf8_text
from app.errors import BodyRefused, ProblemError, UnsupportedMediaType, field_error
from app.pages.messages import Words
from app.schemas.invitations import PublicAttribute
from app.schemas.responses import COMMENT_MAX_LENGTH

SCORE, COMMENT, ATTRIBUTE = "score", "comment", "attributes."
MAX_FIELDS = 200  # far more than a survey has (a score, a comment, its attributes)
_DIGITS = re.compile(r"0|[1-9][0-9]{0,2}")  # no sign, point, space or leading zero


URLENCODED = "application/x-www-form-urlencoded"


def urlencoded_form(body: bytes, content_type: str | None) -> FormData:
    """The form's fields, names and values percent-decoded as UTF-8 (module doc)."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media != URLENCODED:
        raise BodyRefused(
            UnsupportedMediaType(
                f"the survey form is sent as {URLENCODED}",
                errors=[field_error(["header", "Content-Type"], f"expected {URLENCODED}")],
            )
        )
    text = utf8_text(body, content_type)
    try:
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except UnicodeDecodeError:
        raise BodyRefused(
            InvalidEncoding(
                "a percent-escape of the form is not UTF-8",
                errors=[field_error(["body"], "not UTF-8")],
            )
        ) from None
    except ValueError:  # over MAX_FIELDS
        raise BodyRefused(
            ProblemError(
                f"the form has more than {MAX_FIELDS} fields",
                errors=[field_error(["body"], "too many fields")],
            )
        ) from None
    fields: list[tuple[str, str | UploadFile]] = list(pairs)
    return FormData(fields)


@dataclass
class Entered:
    """What the person chose and wrote, shown again when the answer is refused."""

    score: str = ""
    comment: str = ""
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FieldProblem:
    field: str  # the form field's name; its first input has it as id (the summary links it)
    message: str


@dataclass
class AnswerForm:
    entered: Entered
    body: dict[str, Any] | None  # the public answer's JSON body; None when the form is refused
    problems: list[FieldProblem]


def _number(value: str) -> int | None:
    return int(value) if _DIGITS.fullmatch(value) else None


def read_answer_form(
    form: FormData, catalog: Sequence[PublicAttribute], words: Words
) -> AnswerForm:
    keys = {ATTRIBUTE + a.key: a for a in catalog}
    counts = Counter(name for name, _ in form.multi_items())
    values = {name: value for name, value in form.multi_items() if isinstance(value, str)}
    entered = Entered(
        score=values.get(SCORE, ""),
        comment=values.get(COMMENT, ""),
        attributes={a.key: values.get(ATTRIBUTE + a.key, "") for a in catalog},
    )
    problems: list[FieldProblem] = []
    known = {SCORE, COMMENT, *keys}
    if any(name not in known or n > 1 for name, n in counts.items()) or len(values) < len(counts):
        problems.append(FieldProblem(SCORE, words("unexpected_field")))
    score = _number(entered.score)
    if score is None:
        problems.append(FieldProblem(SCORE, words("choose_score")))
    attributes: dict[str, int] = {}
    for name, attribute in keys.items():
        raw = entered.attributes[attribute.key]
        if raw == "":
            continue
        rating = _number(raw)
        if rating is None:
            problems.append(FieldProblem(name, words("choose_rating", scale=attribute.scale)))
        else:
            attributes[attribute.key] = rating
    if problems:
        return AnswerForm(entered, None, _first_per_field(problems))
    body: dict[str, Any] = {SCORE: score, "attributes": attributes}
    if entered.comment.strip():
        body[COMMENT] = entered.comment
    return AnswerForm(entered, body, [])


def read_comment_form(form: FormData, words: Words) -> tuple[str, list[FieldProblem]]:
    """The comment of the edit form (only that field); an empty one clears the comment."""
    counts = Counter(name for name, _ in form.multi_items())
    comment = form.get(COMMENT)
    if set(counts) - {COMMENT} or counts[COMMENT] > 1 or not isinstance(comment, str | None):
        return "", [FieldProblem(COMMENT, words("unexpected_field"))]
    return comment or "", []


def field_problems(
    errors: Iterable[Mapping[str, Any]], catalog: Sequence[PublicAttribute], words: Words
) -> list[FieldProblem]:
    """The schema's or the service's field errors ({loc, msg}) in the person's words."""
    scales = {a.key: a.scale for a in catalog}
    problems = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ()) if part != "body"]
        head = loc[0] if loc else ""
        if head == SCORE:
            problems.append(FieldProblem(SCORE, words("choose_score")))
        elif head == COMMENT:
            too_long = words("comment_too_long", max=COMMENT_MAX_LENGTH)
            problems.append(FieldProblem(COMMENT, too_long))
        elif head == "attributes" and len(loc) > 1 and loc[1] in scales:
            scale = scales[loc[1]]
            problems.append(FieldProblem(ATTRIBUTE + loc[1], words("choose_rating", scale=scale)))
        else:
            problems.append(FieldProblem(SCORE, words("unexpected_field")))
    return _first_per_field(problems)


def _first_per_field(problems: Iterable[FieldProblem]) -> list[FieldProblem]:
    seen: dict[str, FieldProblem] = {}
    for problem in problems:
        seen.setdefault(problem.field, problem)
    return list(seen.values())
