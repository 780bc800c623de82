"""Reading the hosted survey page over HTTP: its headers, and what a person sees in its HTML."""

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import httpx

from app.pages.security import CONTENT_SECURITY_POLICY

HTML = "text/html; charset=utf-8"
# What every answer of the page carries, its errors included.
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "x-robots-tag": "noindex, nofollow",
}
# Text that would mean internals reached a person.
LEAKS = ("Traceback", "SELECT", "sqlalchemy", "asyncpg", 'File "', "problem+json")


@dataclass
class Seen:
    """The parts of a page the tests read."""

    title: str = ""
    h1: list[str] = field(default_factory=list)
    paragraphs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # the error summary's items
    field_errors: dict[str, str] = field(default_factory=dict)  # by the field's name
    radios: dict[str, list[str]] = field(default_factory=dict)  # name -> values, in order
    checked: dict[str, str] = field(default_factory=dict)
    radiogroups: list[dict[str, str]] = field(default_factory=list)  # their attributes
    forms: list[str] = field(default_factory=list)  # actions
    links: list[str] = field(default_factory=list)
    textarea: dict[str, str] = field(default_factory=dict)
    scripts: list[str] = field(default_factory=list)
    styles: list[str] = field(default_factory=list)
    text: str = ""


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.seen = Seen()
        self._open: list[tuple[str, dict[str, str]]] = []
        self._buffer: list[str] = []
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        seen = self.seen
        if tag == "input" and a.get("type") == "radio":
            seen.radios.setdefault(a["name"], []).append(a["value"])
            if "checked" in a:
                seen.checked[a["name"]] = a["value"]
        elif tag == "form":
            seen.forms.append(a.get("action", ""))
        elif tag == "a":
            seen.links.append(a.get("href", ""))
        elif tag == "script":
            seen.scripts.append(a.get("src", "<inline>"))
        elif tag == "link" and a.get("rel") == "stylesheet":
            seen.styles.append(a.get("href", ""))
        elif tag == "style":
            seen.styles.append("<inline>")
        if a.get("role") == "radiogroup":
            seen.radiogroups.append(a)
        if tag in ("title", "h1", "p", "li", "textarea"):
            self._open.append((tag, a))
            self._buffer = []

    def handle_endtag(self, tag: str) -> None:
        if not self._open or self._open[-1][0] != tag:
            return
        _, a = self._open.pop()
        content = " ".join("".join(self._buffer).split())
        seen = self.seen
        if tag == "title":
            seen.title = content
        elif tag == "h1":
            seen.h1.append(content)
        elif tag == "li":
            seen.errors.append(content)
        elif tag == "textarea":
            seen.textarea[a["name"]] = "".join(self._buffer)
        elif "field-error" in a.get("class", ""):
            seen.field_errors[a["id"].removesuffix("-error")] = content
        else:
            seen.paragraphs.append(content)

    def handle_data(self, data: str) -> None:
        self._buffer.append(data)
        self._text.append(data)

    def close(self) -> None:
        super().close()
        self.seen.text = " ".join("".join(self._text).split())


def read(r: httpx.Response, status: int) -> Seen:
    """The page, after checking its status, that it is HTML with every security header, and
    that nothing internal shows in it."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == HTML
    assert_secured(r)
    for leak in LEAKS:
        assert leak.lower() not in r.text.lower(), r.text
    reader = _Reader()
    reader.feed(r.text)
    reader.close()
    return reader.seen


def assert_secured(r: httpx.Response) -> None:
    headers = {name: r.headers.get(name) for name in SECURITY_HEADERS}
    assert headers == SECURITY_HEADERS


def form(**fields: Any) -> dict[str, str]:
    """Form fields as a browser posts them (every value a string)."""
    return {name.replace("__", "."): str(value) for name, value in fields.items()}
