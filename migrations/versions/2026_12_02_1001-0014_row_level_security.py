"""row-level security: every tenant table shows and takes only the transaction's workspace

Each table with a workspace_id has ENABLE and FORCE ROW LEVEL SECURITY and the policy
`tenant`: a row is visible, and may be written, only when its workspace is the one the
transaction set in `app.workspace_id` (app.db.in_workspace; authentication sets it in the
statement that finds the caller). A query that forgets its workspace filter, or a transaction
that names no workspace, finds nothing; FORCE binds the tables' owner too (a superuser, or a
role with BYPASSRLS, is never bound: the service must not connect as one).

The setting is read once per statement (a sub-select becomes an init plan, not a call per row),
and an empty value (what a setting that was set in an earlier transaction of the connection
reads as) is no workspace.

jobs: the periodic jobs belong to no workspace; a transaction that names none sees those only.

nps_lookup, the owner of the SECURITY DEFINER functions of migration 0013, has a policy of its
own on the tables those functions read across workspaces (api_keys, invitations, jobs); nothing
else runs as that role.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 10:01:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WORKSPACE = "(SELECT NULLIF(current_setting('app.workspace_id', true), '')::uuid)"

TENANT_TABLES = (
    "account_risk",
    "accounts",
    "api_keys",
    "case_changes",
    "case_notes",
    "case_responses",
    "cases",
    "deletions",
    "events",
    "idempotency_keys",
    "invitations",
    "response_revisions",
    "responses",
    "stakeholders",
    "surveys",
    "unsubscribes",
    "webhook_attempts",
    "webhook_deliveries",
    "webhook_endpoints",
)
LOOKUPS = {"api_keys": "SELECT", "invitations": "SELECT", "jobs": "ALL"}


def _secure(table: str, condition: str) -> None:
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant ON {table} USING ({condition})")


def upgrade() -> None:
    for table in TENANT_TABLES:
        _secure(table, f"workspace_id = {WORKSPACE}")
    _secure("jobs", f"workspace_id IS NOT DISTINCT FROM {WORKSPACE}")
    for table, command in LOOKUPS.items():
        op.execute(f"CREATE POLICY lookup ON {table} FOR {command} TO nps_lookup USING (true)")


def downgrade() -> None:
    for table in LOOKUPS:
        op.execute(f"DROP POLICY lookup ON {table}")
    for table in (*TENANT_TABLES, "jobs"):
        op.execute(f"DROP POLICY tenant ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
