"""Log lines as JSON: the request id, uvicorn's access fields, and no secret in any of it."""

import json
import logging
import sys

from app.access_log import ACCESS_LOGGER
from app.logs import JsonFormatter
from app.observability import REQUEST_ID

KEY = "nps_" + "Zq3-x_" * 7
TOKEN = "npsi_" + "Ab9_-" * 8


def record(name: str, msg: str, args: tuple[object, ...] = (), exc: bool = False) -> str:
    exc_info = None
    if exc:
        try:
            raise RuntimeError(f"could not use {KEY}")
        except RuntimeError:
            exc_info = sys.exc_info()
    return JsonFormatter().format(
        logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, exc_info)
    )


class TestJsonLines:
    def test_an_access_line_has_its_fields_and_the_request_id(self) -> None:
        reset = REQUEST_ID.set("4f2a9c1d8e7b6a50")
        try:
            line = record(
                ACCESS_LOGGER,
                '%s - "%s %s HTTP/%s" %d',
                ("127.0.0.1:5000", "GET", f"/s/{TOKEN}?score=9", "1.1", 200),
            )
        finally:
            REQUEST_ID.reset(reset)

        entry = json.loads(line)
        assert entry.pop("time").endswith("+00:00")
        assert entry == {
            "level": "info",
            "logger": ACCESS_LOGGER,
            "message": '127.0.0.1:5000 - "GET /s/[redacted]?score=9 HTTP/1.1" 200',
            "request_id": "4f2a9c1d8e7b6a50",
            "client": "127.0.0.1:5000",
            "method": "GET",
            "path": "/s/[redacted]?score=9",
            "status": 200,
        }

    def test_outside_a_request_there_is_no_request_id(self) -> None:
        assert "request_id" not in json.loads(record("uvicorn.error", "Started server"))

    def test_secrets_are_redacted_from_messages_arguments_and_tracebacks(self) -> None:
        line = record(
            "app.worker",
            "key %s, header %s, database %s",
            (KEY, "Authorization: Bearer s3cr3t.value", "postgresql://nps:hunter2@db/nps"),
            exc=True,
        )

        entry = json.loads(line)
        assert entry["message"] == (
            "key [redacted], header Authorization: Bearer [redacted], "
            "database postgresql://nps:[redacted]@db/nps"
        )
        assert "RuntimeError: could not use [redacted]" in entry["error"]
        for secret in (KEY, KEY[4:20], "s3cr3t", "hunter2"):
            assert secret not in line
