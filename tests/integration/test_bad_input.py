"""A corpus of malformed requests, each answered with a 4xx problem+json that reveals nothing
internal and does not echo the hostile input: never a 500, never a stack trace, SQL or the input
itself. The representative endpoints take an API key (ingest, registration, queries, settings)
or an invitation token (the public answer path)."""

import base64
import json
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import pytest

from tests.support.harness import Tenant
from tests.support.invitations import invite
from tests.support.problems import LEAKS, PROBLEM_JSON

JSON = "application/json"
# In every hostile text: found whole in an answer, it was echoed. Longer than an error quotes
# (app.errors.QUOTED_MAX): a name is quoted cut, so a short one would be quoted whole, as meant.
MARK = "<svg/onload=alert(1)>" * 4


@dataclass(frozen=True)
class Bad:
    method: str
    path: str  # "{token}" marks a public call, made with the invitation token
    body: bytes | None = None
    content_type: str | None = JSON
    params: list[tuple[str, str]] = field(default_factory=list)
    headers: list[tuple[str, str]] = field(default_factory=list)


def _raw(value: Any) -> bytes:
    return json.dumps(value).encode()


def _b64(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).decode().rstrip("=")


# Bodies every JSON write refuses, whatever its schema.
BAD_BODIES: dict[str, bytes] = {
    "empty": b"",
    "truncated": b'{"score": 9',
    "not json": b"score=9",
    "a bare string": b'"' + MARK.encode() + b'"',
    "null": b"null",
    "an array": b"[1, 2]",
    "a number": b"9",
    "NaN": b'{"score": NaN}',
    "Infinity": b'{"score": Infinity}',
    "-Infinity": b'{"score": -Infinity}',
    "1e999": b'{"score": 1e999}',
    "a 5000-digit number": b'{"score": ' + b"9" * 5000 + b"}",
    "a huge integer": b'{"score": 99999999999999999999999999999}',
    "nested 100,000 deep": b"[" * 100_000 + b"]" * 100_000,
    "objects nested 3,000 deep": b'{"a":' * 3000 + b"1" + b"}" * 3000,
    "nested 20 deep in a field": b'{"attributes": ' + b"[" * 20 + b"]" * 20 + b"}",
    "a raw NUL byte": b'{"name": "a\x00b"}',
    "an escaped NUL": b'{"name": "a\\u0000b", "comment": "a\\u0000b"}',
    "a lone surrogate": b'{"name": "\\ud800", "comment": "\\ud800"}',
    "bad UTF-8": b'{"name": "\xff\xfe' + MARK.encode() + b'"}',
    "UTF-16": '{"name": "Acme"}'.encode("utf-16"),
    "a UTF-8 BOM": b"\xef\xbb\xbf{}",
    "a duplicate member": b'{"score": 1, "score": 9, "name": "a", "name": "b"}',
    "an unknown member": _raw({MARK * 4: 1}),
    "a hostile member name": _raw({"\x1b[2J" + MARK * 10: 1}),
    "a control character in a string": b'{"name": "\x07"}',
    "trailing garbage": b'{"name": "a"} x',
    "two documents": b'{"name": "a"}{"name": "b"}',
    "single quotes": b"{'name': 'a'}",
    "a comment": b'{"name": "a" /* x */}',
}
# Fields of wrong types or values, merged into a valid body of each endpoint.
BAD_FIELDS: dict[str, dict[str, Any]] = {
    "score true": {"score": True},
    "score a string": {"score": "9"},
    "score 6.5": {"score": 6.5},
    "score null": {"score": None},
    "score 11": {"score": 11},
    "score -1": {"score": -1},
    "score an object": {"score": {"$gt": 0}},
    "an overlong comment": {"comment": MARK * 10_000},
    "an overlong id": {"stakeholder_id": "a" * 10_000},
    "an id of dots": {"stakeholder_id": ".."},
    "an id with a slash": {"stakeholder_id": "../../etc/passwd"},
    "a bad date": {"submitted_at": "2026-13-45T25:61:00Z"},
    "a date without offset": {"submitted_at": "2026-01-01T00:00:00"},
    "a date as a number": {"submitted_at": 1767225600},
    "a date in year 99999": {"submitted_at": "99999-01-01T00:00:00Z"},
    "a date in year 0001": {"submitted_at": "0001-01-01T00:00:00+14:00"},
    "a date far ahead": {"submitted_at": "2999-01-01T00:00:00Z"},
    "a hostile date": {"submitted_at": MARK},
    "attributes a list": {"attributes": [1, 2]},
    "attributes too large": {"attributes": {"k": "x" * 20_000}},
    "a bad channel": {"channel": MARK},
}
VALID: dict[str, dict[str, Any]] = {
    "POST /v1/responses": {"stakeholder_id": "dana", "score": 9},
    "PUT /v1/accounts/acme": {"name": "Acme"},
    "PUT /v1/stakeholders/dana": {"account_id": "acme"},
    "POST /v1/public/answers": {"score": 9},
}
BAD_FIELDS_FOR: dict[str, dict[str, dict[str, Any]]] = {
    "PUT /v1/accounts/acme": {
        "a name of 10,000 characters": {"name": MARK * 500},
        "revenue a float": {"annual_revenue": 1e400},
        "revenue negative": {"annual_revenue": "-5"},
        "revenue huge": {"annual_revenue": "9" * 40},
        "revenue NaN text": {"annual_revenue": "NaN"},
        "a bad currency": {"currency": MARK},
        "attributes too deep": {"attributes": {"a": {"b": {"c": {"d": {"e": 1}}}}}},
    },
    "PUT /v1/stakeholders/dana": {
        "a bad role": {"role": MARK},
        "a bad email": {"email": MARK},
        "an unknown account": {"account_id": "ghost"},
        "an account of dots": {"account_id": "."},
    },
}

# Headers, content types and the Idempotency-Key, on the hot write path.
HEADER_CASES: dict[str, Bad] = (
    {
        f"content type {kind}": Bad(
            "POST", "/v1/responses", _raw(VALID["POST /v1/responses"]), kind
        )
        for kind in (
            "text/plain",
            "application/xml",
            "multipart/form-data; boundary=x",
            "application/x-www-form-urlencoded",
            "application/json; charset=latin-1",
            "application/json; charset=" + MARK,
            "application/json; charset=utf-16",
            "*/*",
            MARK,
        )
    }
    | {
        "no content type": Bad("POST", "/v1/responses", _raw(VALID["POST /v1/responses"]), None),
        "two content types": Bad(
            "POST",
            "/v1/accounts/batch",
            b'{"accounts": [{"id": "a"}]}',
            None,
            headers=[("Content-Type", "text/plain"), ("Content-Type", JSON)],
        ),
        "two authorizations": Bad(
            "POST",
            "/v1/responses",
            _raw(VALID["POST /v1/responses"]),
            headers=[("Authorization", "Bearer nps_x"), ("Authorization", "Bearer nps_y")],
        ),
        "a malformed authorization": Bad(
            "GET", "/v1/accounts", None, None, headers=[("Authorization", "Basic " + MARK)]
        ),
    }
    | {
        f"idempotency key {name}": Bad(
            "POST", "/v1/responses", b'{"score": 9}', headers=[("Idempotency-Key", key)]
        )
        for name, key in {
            "empty": "",
            "of 300 characters": MARK * 15,
            "of 10,000 characters": "k" * 10_000,
            "with a tab": "a\tb",
            "latin-1": "clé-ü",
        }.items()
    }
)

# Queries: cursors, limits, windows, ids, unknown and repeated parameters.
_CURSORS = {
    "not base64": "!!!" + MARK,
    "base64 of garbage": _b64(b"\xff\xfe\x00garbage"),
    "base64 of a string": _b64(b'"x"'),
    "base64 of an object": _b64(b'{"a": 1}'),
    "base64 of a wrong tuple": _b64(b'["2026-01-01", "not-a-uuid"]'),
    "base64 of deep nesting": _b64(b"[" * 3000 + b"]" * 3000),
    "base64 of NaN": _b64(b"[NaN, NaN]"),
    "base64 of a far date": _b64(
        b'["99999-01-01T00:00:00Z", "00000000-0000-0000-0000-000000000000"]'
    ),
    "huge": "A" * 20_000,
}
QUERY_CASES: dict[str, Bad] = (
    {
        f"cursor {name} on {path}": Bad("GET", path, None, None, params=[("cursor", cursor)])
        for name, cursor in _CURSORS.items()
        for path in ("/v1/accounts", "/v1/responses", "/v1/deletions")
    }
    | {
        f"limit {value}": Bad("GET", "/v1/accounts", None, None, params=[("limit", value)])
        for value in ("0", "-1", "201", "abc", "1e3", "9" * 100, MARK)
    }
    | {
        f"window {name}": Bad("GET", "/v1/nps", None, None, params=params)
        for name, params in {
            "from not a date": [("from", "yesterday")],
            "from without offset": [("from", "2026-01-01T00:00:00")],
            "to before from": [("from", "2026-06-01T00:00:00Z"), ("to", "2026-01-01T00:00:00Z")],
            "from in year 1": [("from", "0001-01-01T00:00:00Z")],
            "to in year 99999": [("to", "99999-01-01T00:00:00Z")],
            "from hostile": [("from", MARK)],
            "confidence 2": [("confidence", "2")],
            "confidence NaN": [("confidence", "NaN")],
            "confidence inf": [("confidence", "inf")],
            "a bad method": [("method", MARK)],
            "a bad group_by": [("group_by", "password")],
            "an unknown parameter": [(MARK, "1")],
            "a repeated parameter": [("group_by", "role"), ("group_by", "account")],
            "an empty value": [("account_id", "")],
            "a NUL in a value": [("account_id", "a\x00b")],
            "an overlong account id": [("account_id", "a" * 10_000)],
        }.items()
    }
    | {
        f"trend {name}": Bad("GET", "/v1/nps/trend", None, None, params=params)
        for name, params in {
            "a bad interval": [("interval", "fortnight")],
            "a bad time zone": [("interval", "month"), ("tz", "Mars/Olympus")],
            "a path as time zone": [("interval", "month"), ("tz", "../../etc/passwd")],
            "rolling days -1": [("interval", "month"), ("rolling_days", "-1")],
            "too many buckets": [
                ("interval", "week"),
                ("from", "1900-01-01T00:00:00Z"),
                ("to", "2026-01-01T00:00:00Z"),
            ],
        }.items()
    }
    | {
        f"path {name}": Bad(method, path, body, JSON if body else None)
        for name, (method, path, body) in {
            "account id .": ("GET", "/v1/accounts/%2E", None),
            "account id ..": ("PUT", "/v1/accounts/%2E%2E", b'{"name": "a"}'),
            "stakeholder id ..": ("DELETE", "/v1/stakeholders/%2E%2E", None),
            "survey id .": ("PUT", "/v1/surveys/%2E", b"{}"),
            "an account id of 200 characters": ("GET", "/v1/accounts/" + "a" * 200, None),
            "an account id with a space": ("GET", "/v1/accounts/a%20b", None),
            "an account id with a NUL": ("GET", "/v1/accounts/a%00b", None),
            "an account id hostile": ("GET", "/v1/accounts/%3Csvg%3E", None),
            "a response id not a uuid": ("GET", "/v1/responses/not-a-uuid", None),
            "a response id of an old form": ("GET", "/v1/responses/{0000}", None),
            "a patch of a bad response id": ("PATCH", "/v1/responses/123", b'{"score": 1}'),
            "an unknown path": ("GET", "/v1/" + "x" * 300, None),
            "a method the path lacks": ("DELETE", "/v1/nps", None),
        }.items()
    }
    | {
        f"public {name}": Bad(method, path, body, JSON if body else None, headers=headers)
        for name, (method, path, body, headers) in {
            "invitation with an unknown parameter": ("GET", "/v1/public/invitation?x=1", None, []),
            "invitation without a token": (
                "GET",
                "/v1/public/invitation",
                None,
                [("Authorization", "")],
            ),
            "invitation with a hostile token": (
                "GET",
                "/v1/public/invitation",
                None,
                [("Authorization", "Bearer " + MARK)],
            ),
            "answer patch empty": ("PATCH", "/v1/public/answers", b"{}", []),
            "answer patch null attributes": (
                "PATCH",
                "/v1/public/answers",
                b'{"attributes": null}',
                [],
            ),
            "dismissal with an unknown parameter": (
                "POST",
                "/v1/public/dismissals?now=1",
                None,
                [],
            ),
        }.items()
    }
)


def _body_cases() -> dict[str, Bad]:
    cases: dict[str, Bad] = {}
    for call, valid in VALID.items():
        method, path = call.split(" ")
        public = path.startswith("/v1/public/")
        for name, body in BAD_BODIES.items():
            cases[f"{call}: {name}"] = Bad(method, path, body, headers=_public(public))
        fields: dict[str, dict[str, Any]] = BAD_FIELDS if call == "POST /v1/responses" else {}
        extras: dict[str, dict[str, Any]] = BAD_FIELDS_FOR.get(call, {})
        for name, extra in {**fields, **extras}.items():
            cases[f"{call}: {name}"] = Bad(method, path, _raw({**valid, **extra}))
    return cases


def _public(public: bool) -> list[tuple[str, str]]:
    return [("Authorization", "Bearer {token}")] if public else []


CORPUS = _body_cases() | HEADER_CASES | QUERY_CASES


def test_the_corpus_is_large() -> None:
    assert len(CORPUS) >= 150


@pytest.mark.parametrize("name", list(CORPUS))
async def test_bad_input_is_a_4xx_problem_that_echoes_nothing(tenant: Tenant, name: str) -> None:
    bad = CORPUS[name]
    await tenant.db.account("acme")
    await tenant.db.stakeholder("dana", "acme", role="user")
    token = ""
    if bad.path.startswith("/v1/public/"):
        token = (await invite(tenant.client, "dana"))["token"]
    headers = [(k, v.replace("{token}", token)) for k, v in bad.headers]
    if bad.path.startswith("/v1/public/") and not any(k == "Authorization" for k, _ in headers):
        headers.append(("Authorization", f"Bearer {token}"))
    if bad.content_type is not None and not any(k == "Content-Type" for k, _ in headers):
        headers.append(("Content-Type", bad.content_type))
    request = tenant.client.build_request(
        bad.method, bad.path, content=bad.body, params=cast(Any, bad.params or None)
    )
    replaced = {key.lower() for key, _ in headers}
    fields: list[tuple[bytes, bytes]] = [
        (k.encode(), v.encode()) for k, v in request.headers.multi_items() if k not in replaced
    ]
    fields += [(k.encode(), v.encode("latin-1")) for k, v in headers]
    request.headers = httpx.Headers(fields)  # several of one name, as a client may send them
    r = await tenant.client.send(request)

    assert 400 <= r.status_code < 500, (r.status_code, r.text[:500])
    assert r.headers["content-type"] == PROBLEM_JSON, r.text[:500]
    body = r.json()
    assert {"type", "title", "status", "detail"} <= set(body), body
    assert body["status"] == r.status_code
    text = r.text
    for leak in LEAKS:
        assert leak.lower() not in text.lower(), text[:500]
    assert MARK not in text, text[:500]
    assert "\x1b" not in text, text[:500]
    assert "\\u001b" not in text.lower(), text[:500]
    assert len(text) < 5000, text[:500]
