"""Strong entity tags and the HTTP precondition headers (RFC 9110 §8.8.3, §13).

Pure functions: the routers read the headers, the services decide with these.
"""

import hashlib
from typing import Any

from app.canonical import canonical_json


def strong_etag(value: Any) -> str:
    """A strong entity tag of a JSON value: equal values, equal tags."""
    return '"' + hashlib.sha256(canonical_json(value).encode()).hexdigest()[:32] + '"'


def _tags(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def if_match_passes(header: str | None, current: str) -> bool:
    """If-Match: absent, `*`, or naming the current tag; a weak tag never matches (strong
    comparison)."""
    if header is None:
        return True
    tags = _tags(header)
    return "*" in tags or current in tags


def if_none_match_hits(header: str | None, current: str) -> bool:
    """If-None-Match names the current representation (weak comparison): a GET answers 304."""
    if header is None:
        return False
    tags = [tag.removeprefix("W/") for tag in _tags(header)]
    return "*" in tags or current in tags
