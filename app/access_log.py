"""Secrets never reach a log (redact: invitation tokens, API keys, bearer credentials, URL
passwords; app.logs runs every JSON line through it). Invitation tokens above all: the hosted
page carries its token in the URL (`/s/<token>`), and uvicorn's access log writes every
request's path and query.

`RedactTokens` rewrites a log record's message and arguments before any handler formats them:
the path segment after `/s/` and anything shaped like a token (`npsi_...`, in a query string,
say) become `[redacted]`. The filter sits on uvicorn's access logger, so it holds whatever
handlers or format a deployment's logging configuration gives that logger.
"""

import logging
import re

from app.services.invitation_tokens import TOKEN_PREFIX

ACCESS_LOGGER = "uvicorn.access"
REDACTED = "[redacted]"
# The page's path segment whatever it holds (a token with a typo is still most of a token),
# and a token wherever else it appears.
_PAGE_PATH = re.compile(r"(/s/)[^/?#\s\"]+")
_TOKEN = re.compile(re.escape(TOKEN_PREFIX) + r"[A-Za-z0-9_\-%]+")
# An API key (`nps_...`, app.services.keys), the credential after `Bearer`, and the password
# of a URL (`postgresql://user:secret@host`), wherever a log line shows them.
_API_KEY = re.compile(r"\bnps_[A-Za-z0-9_\-%]+")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',;]+")
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]+(@)")


def redact(text: str) -> str:
    text = _TOKEN.sub(REDACTED, _PAGE_PATH.sub(rf"\g<1>{REDACTED}", text))
    if "nps_" in text:
        text = _API_KEY.sub(REDACTED, text)
    if "://" in text:
        text = _URL_PASSWORD.sub(rf"\g<1>{REDACTED}\g<2>", text)
    return _BEARER.sub(rf"\g<1>{REDACTED}", text)


class RedactTokens(logging.Filter):
    """Lets every record through, with the invitation tokens in it redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install_redaction(logger_name: str = ACCESS_LOGGER) -> None:
    """Add the filter to the logger once (the app factory may run more than once a process)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())
