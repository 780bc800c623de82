"""The webhook phase's machinery (bench.webhooks): a throwaway certificate, the worker and the
receiver (bench.receiver) as processes of their own, and what the phase waits for."""

import asyncio
import ssl
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench import BenchError
from bench.receiver import SECRET
from bench.service import BIN, as_service_role, free_port, service_env, stop_service

HOOK_PATH = "/hooks"


def certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made with openssl."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    command = [
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        "-keyout", str(key), "-out", str(cert),
    ]  # fmt: skip
    try:
        subprocess.run(command, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise BenchError(
            f"the webhook phase makes its receiver's certificate with openssl, which failed "
            f"({exc}): install openssl, or skip the phase with --webhook-events 0"
        ) from exc
    return cert, key


@contextmanager
def started(command: list[str], env: dict[str, str], log: Path) -> Iterator[int]:
    """A process of its own (its output appended to `log`) while the block runs; its pid."""
    with log.open("ab") as sink:
        process = subprocess.Popen(
            command, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process.pid
    finally:
        stop_service(process)


async def until(check: Callable[[], Awaitable[bool]], what: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            raise BenchError(f"gave up after {seconds:.0f} s waiting for {what}")
        await asyncio.sleep(0.1)


def delivery_bound(events: int) -> float:
    """How long to wait for `events` deliveries before calling them lost (10 events/s at worst)."""
    return 120 + events / 10


class Rig:
    """The worker, the receiver and the queries the phase waits on."""

    def __init__(
        self,
        conn: Any,
        database_url: str,
        cert: Path,
        key: Path,
        log: Path,
        concurrency: int | None = None,
    ) -> None:
        self.conn, self.cert, self.key, self.log = conn, cert, key, log
        self.env = as_service_role(
            database_url,
            service_env(database_url, NPS_WEBHOOKS_ALLOW_PRIVATE="true", SSL_CERT_FILE=str(cert)),
        )
        if concurrency is not None:
            self.env["NPS_WORKER_CONCURRENCY"] = str(concurrency)
        self.tls = ssl.create_default_context(cafile=str(cert))
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.client = httpx.AsyncClient(base_url=self.url, verify=self.tls, timeout=30)

    def worker(self) -> Any:
        return started([str(BIN / "nps"), "worker"], self.env, self.log)

    def receiver(self, secret: str) -> Any:
        command = [sys.executable, "-m", "bench.receiver", f"--port={self.port}"]
        command += [f"--cert={self.cert}", f"--key={self.key}"]
        return started(command, {**self.env, SECRET: secret}, self.log)

    async def worker_connected(self) -> bool:
        found = await self.conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'nps-worker'"
        )
        return bool(found)

    async def queue_idle(self) -> bool:
        due = await self.conn.fetchval(
            "SELECT count(*) FROM jobs WHERE status IN ('queued', 'running') AND run_at <= now()"
        )
        return bool(due == 0)

    async def receiver_ready(self) -> bool:
        try:
            await self.client.get("/stats")
        except httpx.TransportError:
            return False
        return True

    async def arrivals(self) -> dict[str, dict[str, Any]]:
        """What the worker delivered, by external_id: first arrival and count."""
        found = (await self.client.get("/arrivals", params={"path": HOOK_PATH})).json()
        return {a["external_id"]: a for a in found}

    async def distinct(self) -> int:
        """How many distinct events the worker has delivered."""
        stats = (await self.client.get("/stats")).json().get(HOOK_PATH, {})
        return int(stats.get("distinct", 0))

    async def received(self, count: int) -> None:
        """Wait until `count` distinct events have arrived; a BenchError if they do not."""

        async def enough() -> bool:
            return await self.distinct() >= count

        try:
            await until(enough, f"{count:,} distinct events at the receiver", delivery_bound(count))
        except BenchError as exc:
            raise BenchError(f"{exc}: {await self.distinct():,} arrived, the rest lost") from None
