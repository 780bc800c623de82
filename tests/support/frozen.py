"""A database that stops answering: a TCP relay to the test server that can be frozen, holding
its connections open while passing no byte either way (as a server stopped with SIGSTOP, or a
network that drops packets, looks to a client)."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.engine import make_url


class FreezableRelay:
    def __init__(self, host: str, port: int) -> None:
        # A host that is a directory is a Unix socket's (the embedded server's).
        self._target = (host, port)
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._pipes: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = self._target
        if host.startswith("/"):
            upstream_reader, upstream_writer = await asyncio.open_unix_connection(
                f"{host}/.s.PGSQL.{port}"
            )
        else:
            upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            pipe = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(pipe)
            pipe.add_done_callback(self._pipes.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                await self._flowing.wait()
                sink.write(data)
                await sink.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            sink.close()


@asynccontextmanager
async def relayed(database_url: str) -> AsyncIterator[tuple[FreezableRelay, str]]:
    """A relay to `database_url`'s server (over TCP) and the URL of the same database through it."""
    url = make_url(database_url)
    socket_dir = url.query.get("host")
    host = socket_dir if isinstance(socket_dir, str) else url.host or "127.0.0.1"
    relay = FreezableRelay(host, url.port or 5432)
    await relay.start()
    through = url.difference_update_query(["host"]).set(host="127.0.0.1", port=relay.port)
    try:
        yield relay, through.render_as_string(hide_password=False)
    finally:
        relay.thaw()
        await relay.close()
