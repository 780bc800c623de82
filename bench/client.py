"""A lean HTTP/1.1 client for the load phases: one keep-alive connection per concurrent client.

The load generator shares the cores with the service and its database, so what it spends per
request is taken from what is measured: httpx's pool spends about 2 ms of CPU per request at 32
concurrent clients, more than the service itself. This client writes a request with one
`write` and reads the answer by Content-Length (or chunks), so the figures are the server's.
"""

import asyncio
import contextlib
import json
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


class ConnectionLost(Exception):
    """The connection closed or broke before a whole answer came back."""


@dataclass(frozen=True, slots=True)
class Reply:
    status_code: int
    headers: dict[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


class Client:
    """One client: requests are sent one after another on one connection (reopened if lost)."""

    def __init__(
        self,
        base_url: str,
        headers: dict[str, str] | None = None,
        *,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.tls = tls  # https: the context that trusts the server's certificate
        self.headers = {"Host": f"{self.host}:{self.port}", **(headers or {})}
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Reply:
        lines = [f"{method} {path} HTTP/1.1"]
        lines += [f"{k}: {v}" for k, v in {**self.headers, **(headers or {})}.items()]
        lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(
                self.host, self.port, ssl=self.tls
            )
        assert self._reader is not None
        try:
            self._writer.write(head + body)
            return await _read_reply(self._reader)
        except (OSError, asyncio.IncompleteReadError, ConnectionLost) as exc:
            await self.close()
            raise ConnectionLost(str(exc) or type(exc).__name__) from exc

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _read_reply(reader: asyncio.StreamReader) -> Reply:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ConnectionLost(f"not an HTTP answer: {status_line[:80]!r}")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        content = b""
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            content += chunk[:-2]
    else:
        content = await reader.readexactly(int(headers.get("content-length", "0")))
    return Reply(int(parts[1]), headers, content)


class Pool:
    """Up to `size` connections shared by the tasks of a phase (each task holds one for the
    length of its request), with httpx's calling convention: `request(method, url, content=,
    headers=)`. An async context manager that closes them all."""

    def __init__(
        self, base_url: str, *, headers: dict[str, str] | None = None, size: int, timeout: float
    ) -> None:
        self.base_url = base_url
        self.headers = headers or {}
        self.size = size
        self.timeout = timeout
        self._idle: list[Client] = []
        self._made = 0
        self._freed = asyncio.Condition()

    async def request(
        self, method: str, url: str, *, content: bytes = b"", headers: dict[str, str] | None = None
    ) -> Reply:
        client = await self._acquire()
        try:
            async with asyncio.timeout(self.timeout):
                return await client.request(method, url, content, headers)
        except TimeoutError:
            await client.close()
            raise ConnectionLost(f"no answer in {self.timeout:g} s") from None
        finally:
            async with self._freed:
                self._idle.append(client)
                self._freed.notify()

    async def get(self, url: str) -> Reply:
        return await self.request("GET", url)

    async def patch(
        self, url: str, *, content: bytes = b"", headers: dict[str, str] | None = None
    ) -> Reply:
        return await self.request("PATCH", url, content=content, headers=headers)

    async def _acquire(self) -> Client:
        async with self._freed:
            while not self._idle and self._made >= self.size:
                await self._freed.wait()
            if self._idle:
                return self._idle.pop()
            self._made += 1
        return Client(self.base_url, self.headers)

    async def __aenter__(self) -> "Pool":
        return self

    async def __aexit__(self, *exc: object) -> None:
        for client in self._idle:
            await client.close()
        self._idle.clear()
