"""Alembic from code: the CLI, the tests and readiness share one configuration.

The script location comes from the installed `migrations` package rather than alembic.ini, so
an installed wheel (the Docker image) migrates the same way as a checkout.
"""

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncConnection

import migrations

SCRIPT_LOCATION = str(Path(migrations.__file__).resolve().parent)


def alembic_config(database_url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.set_main_option("path_separator", "os")
    if database_url is not None:
        config.attributes["database_url"] = database_url
    return config


@lru_cache
def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


async def current_revision(connection: AsyncConnection) -> str | None:
    """The revision the database is at; None for one never migrated."""
    revision: str | None = await connection.run_sync(
        lambda sync: MigrationContext.configure(sync).get_current_revision()
    )
    return revision


def report(before: str | None, after: str | None) -> list[str]:
    """What moving the schema from `before` to `after` did, in lines for a human."""
    head = head_revision()

    def name(revision: str | None) -> str:
        if revision is None:
            return "base (no schema)"
        return f"{revision} (head)" if revision == head else revision

    if before == after:
        return [f"already at {name(after)}; nothing to do"]
    scripts = ScriptDirectory.from_config(alembic_config())
    if after is not None and (
        before is None or before in {s.revision for s in scripts.iterate_revisions(after, "base")}
    ):
        steps = list(reversed(list(scripts.iterate_revisions(after, before or "base"))))
        lines = [f"upgraded from {name(before)} to {name(after)}, applying:"]
    else:
        steps = list(scripts.iterate_revisions(before or "base", after or "base"))
        lines = [f"downgraded from {name(before)} to {name(after)}, reverting:"]
    return lines + [f"  {step.revision}  {step.doc}" for step in steps]
