"""Real headless Chromium for the browser tests: Debian's `chromium` (never a browser build of
Playwright's own, nothing is downloaded), a live `nps serve`, and a guard that fails a test whose
page asks any host but that server.

`python -m tests.support.browser` prints the Chromium the tests would use, or says how to install
one and exits 1 (the Makefile's `test` target runs it first).
"""

import os
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from playwright.async_api import BrowserContext, Route, WebSocketRoute

INSTALL = (
    "install Debian's chromium package (`apt-get install --no-install-recommends chromium`; "
    "`.ci/run` does it when it is missing), or set NPS_CHROMIUM to a Chromium executable"
)
# Not the network: a page's own documents and the blobs its scripts make.
NOT_NETWORK = frozenset({"data", "blob", "about"})


class BrowserMissing(Exception):
    """No Chromium to run the browser tests with; the message says how to get one."""


def chromium_executable(
    environ: Mapping[str, str] = os.environ,
    which: Callable[[str], str | None] = shutil.which,
) -> str:
    """NPS_CHROMIUM (a path or a command name), else `chromium` or `chromium-browser` on PATH."""
    configured = environ.get("NPS_CHROMIUM", "").strip()
    if configured:
        found = which(configured)
        if found is None:
            raise BrowserMissing(
                f"NPS_CHROMIUM={configured!r} is not an executable Chromium: {INSTALL}"
            )
        return found
    for name in ("chromium", "chromium-browser"):
        found = which(name)
        if found is not None:
            return found
    raise BrowserMissing(f"the browser tests found no chromium on PATH: {INSTALL}")


def launch_args(*, root: bool) -> list[str]:
    """Chromium flags for a container or CI machine: a small /dev/shm is common there, and
    Chromium refuses its sandbox to root."""
    args = ["--disable-dev-shm-usage"]
    if root:
        args.append("--no-sandbox")
    return args


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@dataclass(frozen=True)
class LiveServer:
    """A real `nps serve` on a scratch database, with the workspace's bootstrap admin key."""

    base_url: str
    admin_key: str


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443, "ws": 80, "wss": 443}.get(parts.scheme)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return scheme, parts.hostname or "", port


@dataclass
class NetworkGuard:
    """Records every request a browser context makes; lets through only those to `base_url`'s
    origin and aborts (and records) every other."""

    base_url: str
    requested: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    async def install(self, context: BrowserContext) -> None:
        await context.route("**/*", self._request)
        await context.route_web_socket("**/*", self._web_socket)

    def allows(self, url: str) -> bool:
        scheme = urlsplit(url).scheme
        return scheme in NOT_NETWORK or _origin(url) == _origin(self.base_url)

    async def _request(self, route: Route) -> None:
        url = route.request.url
        self.requested.append(url)
        if self.allows(url):
            await route.continue_()
        else:
            self.refused.append(url)
            await route.abort("blockedbyclient")

    async def _web_socket(self, socket: WebSocketRoute) -> None:
        self.requested.append(socket.url)
        if self.allows(socket.url):
            socket.connect_to_server()
        else:
            self.refused.append(socket.url)
            await socket.close(code=1008, reason="refused by the test's network guard")

    def check(self) -> None:
        """Fail when the page asked for anything but the live server."""
        assert not self.refused, (
            f"the page made requests to other hosts than {self.base_url}: {self.refused}"
        )


def main() -> None:
    try:
        sys.stdout.write(chromium_executable() + "\n")
    except BrowserMissing as missing:
        sys.exit(str(missing))


if __name__ == "__main__":
    main()
