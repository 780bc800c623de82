"""The files the page and the widget load, served from the package (no CDN, no build step).

Each is read once, with an ETag of its content, so a browser revalidates with a 304 after its
cache time runs out.
"""

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

STATIC = Path(__file__).resolve().parent / "static"
# Long enough to spare repeat visits, short enough that a release reaches every page within it.
CACHE_CONTROL = "public, max-age=3600"
MEDIA_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


@cache
def asset(name: str) -> Asset | None:
    """A file of static/ by its bare name, or None (no subfolders, nothing outside)."""
    path = STATIC / name
    if "/" in name or name.startswith(".") or not path.is_file():
        return None
    media_type = MEDIA_TYPES.get(path.suffix)
    if media_type is None:
        return None
    body = path.read_bytes()
    return Asset(body, media_type, f'"{hashlib.sha256(body).hexdigest()[:32]}"')


def asset_response(
    request: Request, found: Asset, headers: dict[str, str] | None = None
) -> Response:
    """The file, or 304 when the browser holds this version."""
    sent = {"ETag": found.etag, "Cache-Control": CACHE_CONTROL, **(headers or {})}
    if found.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=sent)
    return Response(found.body, media_type=found.media_type, headers=sent)
