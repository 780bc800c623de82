"""The access log's redaction of invitation tokens: a record shaped as uvicorn's access logger
writes it, through the filter the app factory installs."""

import logging

import pytest

from app.access_log import ACCESS_LOGGER, RedactTokens, install_redaction, redact

TOKEN = "npsi_" + "Ab9_-" * 8 + "xyz"


def access_record(path: str) -> logging.LogRecord:
    """As uvicorn's h11 and httptools protocols log a request."""
    return logging.LogRecord(
        ACCESS_LOGGER,
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", path, "1.1", 200),
        None,
    )


def formatted(path: str) -> str:
    record = access_record(path)
    assert RedactTokens().filter(record) is True
    return record.getMessage()


class TestRedact:
    @pytest.mark.parametrize(
        ("path", "shown"),
        [
            (f"/s/{TOKEN}", "/s/[redacted]"),
            (f"/s/{TOKEN}?score=9", "/s/[redacted]?score=9"),
            (f"/s/{TOKEN}/thanks", "/s/[redacted]/thanks"),
            (f"/s/{TOKEN}/unsubscribe", "/s/[redacted]/unsubscribe"),
            # a link broken by a mail client still holds most of a token
            (f"/s/{TOKEN[:20]}", "/s/[redacted]"),
            (f"/v1/anything?token={TOKEN}", "/v1/anything?token=[redacted]"),
        ],
    )
    def test_the_access_line_shows_the_path_without_the_token(self, path: str, shown: str) -> None:
        line = formatted(path)

        assert line == f'127.0.0.1:5000 - "GET {shown} HTTP/1.1" 200'
        assert TOKEN[5:15] not in line

    def test_other_paths_are_unchanged(self) -> None:
        assert formatted("/v1/nps?from=2026-01-01") == (
            '127.0.0.1:5000 - "GET /v1/nps?from=2026-01-01 HTTP/1.1" 200'
        )
        assert redact("/widget.js") == "/widget.js"

    def test_a_token_in_the_message_itself_is_redacted(self) -> None:
        record = logging.LogRecord("x", logging.INFO, __file__, 1, f"saw {TOKEN}", None, None)
        RedactTokens().filter(record)

        assert record.getMessage() == "saw [redacted]"


class TestInstall:
    def test_installs_one_filter_however_often_it_is_called(self) -> None:
        logger = logging.getLogger("tests.access-log")
        install_redaction(logger.name)
        install_redaction(logger.name)

        assert [type(f) for f in logger.filters] == [RedactTokens]
        logger.filters.clear()
