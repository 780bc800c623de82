"""The route gate on an app of its own: what a route declares, however it declares it."""

from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, Query
from pydantic import BaseModel

from app.api.deps import HeadRequest
from app.errors import install_error_handlers
from app.routing import RouteGate


class Page(BaseModel):
    size: int = 10
    order: str = "asc"


def inner(deep: int = 0) -> int:
    return deep


def outer(level: Annotated[int, Depends(inner)], near: int = 0) -> int:
    return level + near


def gated() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/model")
    async def model(page: Annotated[Page, Query()]) -> dict[str, int | str]:
        return page.model_dump()

    @app.get("/nested")
    async def nested(
        value: Annotated[int, Depends(outer)], tags: Annotated[list[str] | None, Query()] = None
    ) -> int:
        return value

    @app.get("/visits")
    async def visits(head: HeadRequest) -> int:
        if not head:
            seen.append("visit")
        return len(seen)

    seen: list[str] = []
    app.add_middleware(RouteGate, api=app)
    return app


async def get(path: str, method: str = "GET", app: FastAPI | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app or gated())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, path)


async def test_a_query_model_declares_its_fields() -> None:
    assert (await get("/model?size=3&order=desc")).json() == {"size": 3, "order": "desc"}
    r = await get("/model?page=1")
    assert r.status_code == 422
    assert [e["loc"] for e in r.json()["errors"]] == [["query", "page"]]


async def test_every_level_of_dependencies_declares() -> None:
    assert (await get("/nested?deep=1&near=2&tags=a&tags=b")).json() == 3
    r = await get("/nested?deeep=1&near=2&near=3")
    assert r.status_code == 422
    assert [(e["loc"], e["msg"]) for e in r.json()["errors"]] == [
        (
            ["query", "deeep"],
            "unknown parameter: GET /nested does not take `deeep`; did you mean `deep`?",
        ),
        (["query", "near"], "given 2 times; this parameter takes one value"),
    ]


async def test_a_head_is_served_by_the_get_which_knows_it_is_a_head() -> None:
    app = gated()

    head = await get("/visits", "HEAD", app)
    visit = await get("/visits", "GET", app)

    assert (head.status_code, head.content, head.headers["content-length"]) == (200, b"", "1")
    assert visit.json() == 1
    assert (await get("/visits", "HEAD", app)).headers["content-length"] == "1"
