"""Uploading files to POST /v1/imports and running their jobs as the worker does."""

import csv
import io
from collections.abc import Sequence
from typing import Any

import httpx

from app.config import Settings
from app.worker import Worker
from tests.support.harness import Tenant

CSV = "text/csv"
NDJSON = "application/x-ndjson"


def csv_bytes(rows: Sequence[Sequence[Any]], *, delimiter: str = ",", bom: bool = False) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return (b"\xef\xbb\xbf" if bom else b"") + buffer.getvalue().encode()


async def upload(
    client: httpx.AsyncClient,
    body: bytes,
    *,
    content_type: str = CSV,
    status: int = 202,
    **params: str,
) -> dict[str, Any]:
    r = await client.post(
        "/v1/imports", params=params, content=body, headers={"Content-Type": content_type}
    )
    assert r.status_code == status, r.text
    data: dict[str, Any] = r.json()
    return data


async def run_imports(tenant: Tenant, *, chunk_rows: int = 5000) -> int:
    """Run every due job (the imports among them) as the worker does; how many ran."""
    settings = Settings(
        database_url="postgresql://unused@localhost/unused", import_chunk_rows=chunk_rows
    )
    return await Worker(tenant.db.sessionmaker, settings).drain()


async def imported(
    tenant: Tenant, body: bytes, *, chunk_rows: int = 5000, content_type: str = CSV, **params: str
) -> dict[str, Any]:
    """Upload, run, and read the import back."""
    r = await tenant.client.post(
        "/v1/imports", params=params, content=body, headers={"Content-Type": content_type}
    )
    assert r.status_code == 202, r.text
    job = r.json()
    await run_imports(tenant, chunk_rows=chunk_rows)
    r = await tenant.client.get(f"/v1/imports/{job['id']}")
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


async def import_errors(client: httpx.AsyncClient, import_id: str) -> list[dict[str, Any]]:
    r = await client.get(f"/v1/imports/{import_id}/errors", params={"limit": 200})
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data
