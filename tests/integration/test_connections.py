"""Slow and numerous clients against a real `nps serve`: a body shorter than its Content-Length
gets its 408, connections beyond NPS_MAX_CONNECTIONS get uvicorn's 503, idle keep-alive
connections are closed after NPS_KEEP_ALIVE_SECONDS. Each test runs one of the ways `nps serve`
starts its web processes (in-process uvicorn, exec'ed uvicorn, one socket per process)."""

import asyncio
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from app.config import Settings
from app.launch import _uvicorn_args, uvicorn_options
from tests.support.processes import eventually, free_port, started_nps, stop, until_ready

# A bound on how long a test waits for the server; none of them is a timing target.
GIVE_UP = 20.0


@contextmanager
def _connected(port: int) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=GIVE_UP)
    try:
        yield sock
    finally:
        sock.close()


def _read_all(sock: socket.socket) -> bytes:
    """What the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def _exchange(port: int, request: bytes) -> bytes:
    with _connected(port) as sock:
        sock.sendall(request)
        return _read_all(sock)


class TestUvicornOptions:
    def test_every_way_of_serving_gets_the_bounds(self) -> None:
        settings = Settings(max_connections=50, keep_alive_seconds=7)
        options = uvicorn_options(settings)
        assert (options["limit_concurrency"], options["timeout_keep_alive"]) == (50, 7)
        args = _uvicorn_args(settings)
        assert {"--limit-concurrency=50", "--timeout-keep-alive=7", "--proxy-headers"} <= set(args)


class TestShortBody:
    async def test_a_body_shorter_than_its_content_length_gets_408_and_close(
        self, empty_database_url: str
    ) -> None:
        port = free_port()
        with started_nps(
            empty_database_url,
            "serve",
            NPS_PORT=str(port),
            NPS_LOG_LEVEL="warning",
            NPS_BODY_TIMEOUT_SECONDS="1",
        ) as serve:
            await until_ready(port)
            request = (
                b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nps_x\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                b'{"score": 9'
            )
            answer = await asyncio.to_thread(_exchange, port, request)
            head, _, body = answer.partition(b"\r\n\r\n")
            lines = head.decode().lower().split("\r\n")
            assert lines[0] == "http/1.1 408 request timeout"
            assert "connection: close" in lines
            assert "content-type: application/problem+json" in lines
            assert b'"type":"/problems/request-timeout"' in body
            assert await asyncio.to_thread(stop, serve) == 0


class TestConnectionBound:
    async def test_beyond_the_bound_a_request_gets_503_and_close(
        self, empty_database_url: str
    ) -> None:
        port = free_port()
        with started_nps(
            empty_database_url,
            "serve",
            NPS_PORT=str(port),
            NPS_LOG_LEVEL="warning",
            NPS_WORKER="off",  # exec'ed into uvicorn
            NPS_MAX_CONNECTIONS="3",
        ) as serve:
            await until_ready(port)
            get = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            with _connected(port), _connected(port):  # two clients that never send a request

                async def refused() -> bool:
                    answer = await asyncio.to_thread(_exchange, port, get)
                    return answer.startswith(b"HTTP/1.1 503 ")

                await eventually(refused, "a request beyond the bound to get 503", every=0.2)
                answer = await asyncio.to_thread(_exchange, port, get)
                head, _, body = answer.partition(b"\r\n\r\n")
                lines = head.decode().lower().split("\r\n")
                assert "connection: close" in lines
                assert "content-type: text/plain; charset=utf-8" in lines
                assert body == b"Service Unavailable"

            async def served() -> bool:
                answer = await asyncio.to_thread(_exchange, port, get)
                return answer.startswith(b"HTTP/1.1 200 ")

            # The stalled clients gone, the next request is served again.
            await eventually(served, "requests to be served again", every=0.2)
            assert await asyncio.to_thread(stop, serve) == 0


class TestKeepAlive:
    async def test_an_idle_keep_alive_connection_is_closed_after_the_setting(
        self, empty_database_url: str
    ) -> None:
        port = free_port()
        with started_nps(
            empty_database_url,
            "serve",
            NPS_PORT=str(port),
            NPS_LOG_LEVEL="warning",
            NPS_WORKER="off",
            NPS_WORKERS="2",  # a socket per web process (app.serving)
            NPS_KEEP_ALIVE_SECONDS="1",
        ) as serve:
            await until_ready(port)

            def idle_after_one_request() -> bytes:
                with _connected(port) as sock:
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    # uvicorn's own default keeps an idle connection 5 s: closed before that,
                    # it was the setting that closed it.
                    sock.settimeout(4.0)
                    return _read_all(sock)

            answer = await asyncio.to_thread(idle_after_one_request)
            assert answer.startswith(b"HTTP/1.1 200 ")
            assert b"connection: close" not in answer.lower()
            assert await asyncio.to_thread(stop, serve) == 0
