"""A private PostgreSQL (app.embedded) that a fault test may stop, restart, freeze and thaw
without touching the server every other test uses. Always killed at the end of the block."""

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from app.embedded import _package


def _cluster_pids(pgdata: Path) -> list[int]:
    """The postmaster and every process it started (its backends and helpers)."""
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return []
    postmaster = int(pid_file.read_text().split()[0])
    pids = [postmaster]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == postmaster:
                    pids.append(int(entry.name))
    return pids


@dataclass
class PrivatePostgres:
    pgdata: Path
    url: str  # a plain URL of the maintenance database
    server: Any

    def stop_fast(self) -> None:
        """`pg_ctl stop -m fast`: every session is ended mid-transaction, then the server."""
        package, _ = _package()
        package.pg_ctl(
            ["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self.server.system_user
        )

    def start(self) -> None:
        """Started again as app.embedded started it: on the same socket, so the same URL."""
        package, _ = _package()
        socket_dir = parse_qs(urlsplit(self.url).query)["host"][0]
        package.pg_ctl(
            ["-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(self.server.log), "start"],
            pgdata=self.pgdata,
            user=self.server.system_user,
            timeout=30,
        )

    def _signal(self, signum: int) -> None:
        for pid in _cluster_pids(self.pgdata):
            with suppress(ProcessLookupError):
                os.kill(pid, signum)

    def freeze(self) -> None:
        """Every process of the server stopped (SIGSTOP): connections stay open, nothing answers."""
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal(signal.SIGCONT)


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A new embedded server in a temporary directory; thawed, stopped immediately and deleted
    at the end whatever happened."""
    parent = Path(tempfile.mkdtemp(prefix="nps-fault-"))
    pgdata = parent / "pg"
    package, _ = _package()
    try:
        server = package.get_server(pgdata, cleanup_mode=None)  # initialised and started
        private = PrivatePostgres(pgdata, str(server.get_uri("postgres")), server)
        try:
            yield private
        finally:
            private.thaw()
            with suppress(Exception):  # already stopped by the test
                package.pg_ctl(
                    ["-w", "-m", "immediate", "stop"], pgdata=pgdata, user=server.system_user
                )
    finally:
        shutil.rmtree(parent, ignore_errors=True)
