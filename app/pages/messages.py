"""The hosted page's own words (buttons, errors, notices), in English and German, beside the
survey's texts, which come from its definition (app.services.surveys.texts_for)."""

from types import MappingProxyType
from typing import Final

ENGLISH: Final = "en"

_MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "title": "Survey",
        "greeting": "Hi {name},",
        "comment_hint": "Optional.",
        "attributes_heading": "How would you rate us on the following?",
        "attribute_hint": "From 1 (poor) to {scale} (excellent), optional.",
        "submit": "Send",
        "errors_heading": "Please check your answer",
        "choose_score": "Choose a score from 0 to 10.",
        "comment_too_long": "The comment is too long: at most {max} characters.",
        "choose_rating": "Choose a rating from 1 to {scale}.",
        "unexpected_field": "The form sent a field it does not have; reload the page.",
        "already_answered_title": "Already answered",
        "already_answered": "You answered this survey on {date}. Thank you!",
        "edit_heading": "Add or change your comment",
        "edit_hint": "You can change it until {time} UTC.",
        "save_comment": "Save comment",
        "comment_saved": "Your comment was saved.",
        "edit_closed": "The comment can no longer be changed: 30 minutes have passed.",
        "unsubscribe_link": "Do not want these surveys? Unsubscribe",
        "unsubscribe_title": "Unsubscribe",
        "unsubscribe_question": "Stop receiving surveys from {company}?",
        "unsubscribe_submit": "Unsubscribe",
        "unsubscribed_title": "Unsubscribed",
        "unsubscribed": "You will not be invited to {company}'s surveys again.",
        "not_found_title": "Survey link not found",
        "not_found": "This survey link is not valid. Check that the whole link was copied.",
        "expired_title": "Survey closed",
        "expired": "This survey link has expired.",
        "revoked": "This survey link is no longer valid.",
        "too_many_title": "Too many requests",
        "too_many": "Too many requests. Wait a moment and try again.",
        "error_title": "Something went wrong",
        "error": "Something went wrong on our side. Try again in a moment.",
        "bad_request_title": "Request not understood",
        "bad_request": "This request could not be handled.",
    },
    "de": {
        "title": "Umfrage",
        "greeting": "Hallo {name},",
        "comment_hint": "Optional.",
        "attributes_heading": "Wie bewerten Sie uns in diesen Punkten?",
        "attribute_hint": "Von 1 (schlecht) bis {scale} (ausgezeichnet), optional.",
        "submit": "Absenden",
        "errors_heading": "Bitte prüfen Sie Ihre Antwort",
        "choose_score": "Wählen Sie einen Wert von 0 bis 10.",
        "comment_too_long": "Der Kommentar ist zu lang: höchstens {max} Zeichen.",
        "choose_rating": "Wählen Sie eine Bewertung von 1 bis {scale}.",
        "unexpected_field": "Das Formular enthielt ein unbekanntes Feld; laden Sie die Seite neu.",
        "already_answered_title": "Bereits beantwortet",
        "already_answered": "Sie haben diese Umfrage am {date} beantwortet. Vielen Dank!",
        "edit_heading": "Kommentar hinzufügen oder ändern",
        "edit_hint": "Sie können ihn bis {time} UTC ändern.",
        "save_comment": "Kommentar speichern",
        "comment_saved": "Ihr Kommentar wurde gespeichert.",
        "edit_closed": "Der Kommentar kann nicht mehr geändert werden: 30 Minuten sind vorbei.",
        "unsubscribe_link": "Keine Umfragen mehr erhalten? Abmelden",
        "unsubscribe_title": "Abmelden",
        "unsubscribe_question": "Keine Umfragen von {company} mehr erhalten?",
        "unsubscribe_submit": "Abmelden",
        "unsubscribed_title": "Abgemeldet",
        "unsubscribed": "Sie werden nicht mehr zu Umfragen von {company} eingeladen.",
        "not_found_title": "Umfrage-Link nicht gefunden",
        "not_found": "Dieser Umfrage-Link ist ungültig. Prüfen Sie, ob er vollständig kopiert "
        "wurde.",
        "expired_title": "Umfrage geschlossen",
        "expired": "Dieser Umfrage-Link ist abgelaufen.",
        "revoked": "Dieser Umfrage-Link ist nicht mehr gültig.",
        "too_many_title": "Zu viele Anfragen",
        "too_many": "Zu viele Anfragen. Warten Sie einen Moment und versuchen Sie es erneut.",
        "error_title": "Etwas ist schiefgelaufen",
        "error": "Bei uns ist etwas schiefgelaufen. Versuchen Sie es gleich noch einmal.",
        "bad_request_title": "Anfrage nicht verstanden",
        "bad_request": "Diese Anfrage konnte nicht bearbeitet werden.",
    },
}
MESSAGES: Final = MappingProxyType({k: MappingProxyType(v) for k, v in _MESSAGES.items()})


def language(locale: str | None) -> str:
    """The language whose words the page uses for a locale tag ("de-CH" -> "de"), else English."""
    lang = (locale or "").split("-", 1)[0].lower()
    return lang if lang in MESSAGES else ENGLISH


class Words:
    """The page's words in one language; `words("greeting", name="Ada")` fills placeholders."""

    def __init__(self, locale: str | None) -> None:
        self.lang = language(locale)
        self._table = MESSAGES[self.lang]

    def __call__(self, key: str, **values: object) -> str:
        text = self._table[key]
        return text.format(**values) if values else text
