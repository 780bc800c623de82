"""CPU time per request, of the server's processes and of the database backends serving it.

Throughput on a machine shared with other work moves with that work; the CPU a request costs
does not. Both are read from /proc (utime + stime): the server's process tree, and the
PostgreSQL backends connected to the benchmark's database (when the server runs on this machine;
else the database's figure is None). A backend that exits during a phase takes its CPU with it,
so the database's figure is a lower bound.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from bench.memory import process_tree

_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def _total(pids: list[int]) -> dict[int, float]:
    return {pid: t for pid in pids if (t := _cpu_seconds(pid)) is not None}


def _is_postgres(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().startswith(b"postgres")
    except OSError:
        return False


async def _backends(conn: Any) -> list[int]:
    """The local client backends of the database `conn` is on, but `conn`'s own (autovacuum is
    not the requests' cost); none when the server is elsewhere (its pids are not this
    machine's)."""
    rows = await conn.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
    )
    pids = [row["pid"] for row in rows]
    return pids if pids and all(_is_postgres(pid) for pid in pids) else []


@dataclass
class CpuUse:
    """CPU seconds a phase took: of the server, of the database (None when not readable)."""

    server_s: float = 0.0
    database_s: float | None = None
    requests: int = 0
    _server: dict[int, float] = field(default_factory=dict)
    _database: dict[int, float] = field(default_factory=dict)

    def report(self) -> dict[str, Any]:
        per = 1e6 / self.requests if self.requests else None
        return {
            "server_s": self.server_s,
            "database_s": self.database_s,
            "server_us_per_request": self.server_s * per if per else None,
            "database_us_per_request": (
                self.database_s * per if per and self.database_s is not None else None
            ),
        }


@asynccontextmanager
async def measuring(server_pid: int, conn: Any) -> AsyncIterator[CpuUse]:
    """The CPU the server's processes and the database's backends use inside the block (set
    `requests` on the value to get it per request)."""
    use = CpuUse()
    use._server = _total(process_tree(server_pid))
    use._database = _total(await _backends(conn))
    yield use
    after = _total(process_tree(server_pid))
    use.server_s = sum(t - use._server.get(pid, 0.0) for pid, t in after.items())
    if use._database and (later := _total(await _backends(conn))):
        use.database_s = sum(t - use._database.get(pid, 0.0) for pid, t in later.items())
