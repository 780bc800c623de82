"""Log lines as JSON, one object a line, with the request id and with secrets redacted.

`JsonFormatter` writes `time`, `level`, `logger`, `message` and, during a request, `request_id`
(app.observability); uvicorn's access lines also get `client`, `method`, `path` and `status`.
Every text it writes, the message, its arguments and any traceback, goes through
app.access_log.redact first, so no API key, invitation token, bearer credential or database
password reaches a log whatever logger wrote it. `nps serve` installs it in each web process
(NPS_LOG_FORMAT=text keeps uvicorn's plain lines, still redacted on the access log).
"""

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from app.access_log import ACCESS_LOGGER, redact
from app.observability import REQUEST_ID

LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "app", "nps")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        args = record.args
        if record.name == ACCESS_LOGGER and isinstance(args, tuple) and len(args) == 5:
            client, method, path, _, status = args
            entry |= {
                "client": str(client),
                "method": str(method),
                "path": redact(str(path)),
                "status": status,
            }
        if record.exc_info:
            entry["error"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def install_json_logs(level: str = "info") -> None:
    """Every logger that matters writes JSON to stderr (once: later calls change nothing)."""
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
