"""The floor of a write through HTTP: a bare ASGI app that does one pooled asyncpg INSERT per
request, served by uvicorn with the service's own settings and worker count (bench.service).

`GET /readyz` answers 200 once the pool is up; `POST /one` stores the request's JSON body as one
row; `POST /batch` stores each element of the body's first list as a row, in one INSERT. Both
answer 201 with the ids. No framework, no validation, no authentication, no transaction beyond
the statement's own: what is left is HTTP, JSON and one round trip to PostgreSQL, the cost no
service that stores an answer can go under.
"""

import json
import os
import uuid
from typing import Any

import asyncpg

DSN = "NPS_BENCH_FLOOR_DSN"
POOL = "NPS_BENCH_FLOOR_POOL"
TABLE = "bench_floor_rows"
CREATE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (id uuid PRIMARY KEY, body jsonb NOT NULL, "
    "created_at timestamptz NOT NULL DEFAULT now())"
)
_ONE = f"INSERT INTO {TABLE} (id, body) VALUES ($1, $2::text::jsonb) RETURNING id"
_MANY = (
    f"INSERT INTO {TABLE} (id, body) "
    "SELECT * FROM unnest($1::uuid[], $2::text[]::jsonb[]) RETURNING id"
)

Scope = dict[str, Any]


class FloorApp:
    """The ASGI app (pure ASGI: HTTP and lifespan)."""

    def __init__(self) -> None:
        self.pool: Any = None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] == "GET" and scope["path"] == "/readyz":
            await _answer(send, 200, {"status": "ready"})
            return
        if scope["method"] != "POST" or scope["path"] not in ("/one", "/batch"):
            await _answer(send, 404, {"detail": "not found"})
            return
        value = json.loads(body)
        async with self.pool.acquire() as conn:
            if scope["path"] == "/one":
                ids = [await conn.fetchval(_ONE, uuid.uuid4(), json.dumps(value))]
            else:
                rows = next(v for v in value.values() if isinstance(v, list))
                records = await conn.fetch(
                    _MANY, [uuid.uuid4() for _ in rows], [json.dumps(r) for r in rows]
                )
                ids = [r["id"] for r in records]
        await _answer(send, 201, {"ids": [str(i) for i in ids]})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                size = int(os.environ.get(POOL, "10"))
                # As the service's engine: up to `size` connections, opened as needed, kept.
                self.pool = await asyncpg.create_pool(os.environ[DSN], min_size=0, max_size=size)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _answer(send: Any, status: int, content: dict[str, Any]) -> None:
    body = json.dumps(content).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_app() -> FloorApp:
    """uvicorn's factory (`bench.floor_app:create_app --factory`)."""
    return FloorApp()
