"""JSON request bodies, read strictly and parsed once.

FastAPI parses a JSON body with Starlette's `Request.json()`: `json.loads` on the bytes, which
guesses UTF-16 and UTF-32 from the first bytes, ignores a declared charset, and keeps the last of
two members with the same name (`{"score": 1, "score": 9}` is a 9). Every API route is a
`StrictRoute`, whose requests parse instead with `parse_json`:

- the body must be UTF-8 (RFC 8259 section 8.1): a charset other than UTF-8 in Content-Type is
  a 415; bytes that are not UTF-8, or a byte order mark (UTF-8's too), a 400
  `/problems/invalid-encoding`;
- a member name given twice in one object, at any depth, is a 422 naming it;
- JSON nested too deep for the parser is a 422, never a RecursionError.

The parsed value is kept on the request, so the idempotency fingerprint reads it instead of
parsing the body again (`parsed_body`).
"""

import json
from collections.abc import Callable, Coroutine
from email.message import Message
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from app.errors import (
    BodyRefused,
    ProblemError,
    Unprocessable,
    UnsupportedMediaType,
    field_error,
    quoted,
)

_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")


class InvalidEncoding(ProblemError):
    status, slug, title = 400, "invalid-encoding", "Body is not UTF-8"


class _Duplicate(Exception):
    def __init__(self, name: str) -> None:
        self.name = name


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise _Duplicate(name)
            seen.add(name)
    return members


def declared_charset(content_type: str | None) -> str | None:
    """The charset parameter of a Content-Type, lower-cased; None when there is none."""
    if not content_type or "charset" not in content_type.lower():
        return None
    message = Message()
    message["content-type"] = content_type
    charset = message.get_param("charset")
    return charset.strip().lower() if isinstance(charset, str) else "?"


def utf8_text(body: bytes, content_type: str | None) -> str:
    """The body as text, when it is UTF-8 and says nothing else (module doc); else a problem."""
    charset = declared_charset(content_type)
    if charset is not None and charset not in ("utf-8", "utf8"):
        raise BodyRefused(
            UnsupportedMediaType(
                f"the body must be UTF-8; charset {quoted(charset)!r} is not supported",
                errors=[field_error(["header", "Content-Type"], "only charset=utf-8")],
            )
        )
    if body.startswith(_BOMS):
        raise BodyRefused(
            InvalidEncoding(
                "the body starts with a byte order mark: send UTF-8 without one",
                errors=[field_error(["body"], "byte order mark")],
            )
        )
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyRefused(
            InvalidEncoding(
                f"the body is not valid UTF-8 (at byte {exc.start})",
                errors=[field_error(["body"], "not UTF-8")],
            )
        ) from None


def parse_json(body: bytes, content_type: str | None) -> Any:
    """The JSON value of a body; a json.JSONDecodeError for malformed JSON (FastAPI's 422)."""
    text = utf8_text(body, content_type)
    try:
        return json.loads(text, object_pairs_hook=_unique_members)
    except _Duplicate as exc:
        name = quoted(exc.name)
        raise BodyRefused(
            Unprocessable(
                f"the member {name!r} is given more than once in one object",
                errors=[field_error(["body", exc.name], "duplicate member name")],
            )
        ) from None
    except RecursionError:
        raise BodyRefused(
            Unprocessable(
                "the body is nested too deeply", errors=[field_error(["body"], "nested too deeply")]
            )
        ) from None


_UNPARSED = object()


class StrictRequest(Request):
    """A request whose JSON body is parsed by parse_json."""

    async def json(self) -> Any:
        parsed = self.scope.get(_PARSED, _UNPARSED)
        if parsed is _UNPARSED:
            parsed = parse_json(await self.body(), self.headers.get("content-type"))
            self.scope[_PARSED] = parsed
        return parsed


# Kept in the scope, which the route's request and its dependencies' share.
_PARSED = "nps.json_body"


def parsed_body(request: Request) -> tuple[bool, Any]:
    """(True, the body's JSON value) when the route already parsed it, else (False, None)."""
    parsed = request.scope.get(_PARSED, _UNPARSED)
    return (False, None) if parsed is _UNPARSED else (True, parsed)


class StrictRoute(APIRoute):
    """The route class of every API router: its JSON bodies are read by StrictRequest."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictRequest(request.scope, request.receive, request._send))

        return strict_handler
