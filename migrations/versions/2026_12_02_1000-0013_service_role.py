"""the service's roles: nps_service connects, nps_lookup owns the cross-workspace look-ups

Groundwork for row-level security (migration 0014). The migrations run as the tables' owner; the
service connects as a role that owns nothing, so the tables' policies bind it:

- `nps_service` (NOLOGIN here: an operator grants it LOGIN and a password, or makes a login
  role a member of it; the embedded server and the tests grant LOGIN) may read and write every
  table's rows, and every table a later migration creates (default privileges), but never
  alembic_version;
- `nps_lookup` (NOLOGIN, nobody's login) owns the few SECURITY DEFINER functions that must find
  a row whatever the workspace: the API key and the invitation of a bearer secret (which set
  the transaction's workspace in the same statement), the rate-limit tally, a worker's claim of
  the next job. Its own policies (0014) let only these functions through.

Roles belong to the whole server, not to one database: they are created when missing and never
dropped (another database of the server may use them); the downgrade revokes what this
database granted them.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Created when missing; several databases of one server (the tests') migrate at the same time.
# The migrating role must be able to make nps_lookup own functions: a member of it.
ROLES = """
DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['nps_service', 'nps_lookup'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', name);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created meanwhile by another database's migration
            END;
        END IF;
    END LOOP;
    IF NOT pg_has_role(current_user, 'nps_lookup', 'MEMBER') THEN
        GRANT nps_lookup TO CURRENT_USER;
    END IF;
END
$$
"""

SERVICE_GRANTS = [
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO nps_service",
    "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO nps_service",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
    "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO nps_service",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO nps_service",
    # The schema's version is the migrations' business; readiness only reads it.
    "REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM nps_service",
]

LOOKUP_GRANTS = [
    "GRANT SELECT ON api_keys, invitations, workspaces TO nps_lookup",
    "GRANT SELECT, UPDATE ON jobs TO nps_lookup",
    "GRANT SELECT, INSERT, UPDATE ON rate_limit_windows TO nps_lookup",
]

# The API key of a secret's hash, and the transaction's workspace set to its own (so every
# statement after it sees that workspace's rows): API-key authentication in one statement.
LIVE_API_KEY = """
CREATE FUNCTION live_api_key(_key_hash bytea)
RETURNS TABLE (
    workspace_id uuid, id uuid, prefix varchar, scopes varchar[], last_used_at timestamptz
) LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    SELECT k.workspace_id, k.id, k.prefix, k.scopes, k.last_used_at
    INTO workspace_id, id, prefix, scopes, last_used_at
    FROM api_keys AS k
    WHERE k.key_hash = _key_hash AND k.revoked_at IS NULL;
    IF FOUND THEN
        PERFORM set_config('app.workspace_id', workspace_id::text, true);
        RETURN NEXT;
    END IF;
END
$$
"""

# The same for an invitation token (the public calls and the hosted pages).
INVITATION_HOLDER = """
CREATE FUNCTION invitation_holder(_token_hash bytea)
RETURNS TABLE (
    workspace_id uuid, id uuid, stakeholder_id varchar, survey varchar, channel varchar,
    status varchar, expires_at timestamptz
) LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    SELECT i.workspace_id, i.id, i.stakeholder_id, i.survey, i.channel, i.status, i.expires_at
    INTO workspace_id, id, stakeholder_id, survey, channel, status, expires_at
    FROM invitations AS i
    WHERE i.token_hash = _token_hash;
    IF FOUND THEN
        PERFORM set_config('app.workspace_id', workspace_id::text, true);
        RETURN NEXT;
    END IF;
END
$$
"""

# Which workspace holds the key with this prefix or this secret (revoked or not): the CLI's
# look-ups by key, and the uniqueness check of a new key. Sets nothing.
API_KEY_WORKSPACE = """
CREATE FUNCTION api_key_workspace(_prefix text, _key_hash bytea) RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT workspace_id FROM api_keys WHERE prefix = _prefix OR key_hash = _key_hash LIMIT 1
$$
"""

# A worker's claim of the next due job, in whichever workspace (app.worker runs it then in the
# job's workspace).
CLAIM_JOB = """
CREATE FUNCTION claim_job(_worker text, _known text[])
RETURNS TABLE (
    id bigint, task varchar, payload jsonb, workspace_id uuid, attempts integer,
    max_attempts integer, lease_seconds integer
) LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    UPDATE jobs SET status = 'running', attempts = jobs.attempts + 1, locked_by = _worker,
                    locked_until = now() + make_interval(secs => jobs.lease_seconds),
                    started_at = now()
    WHERE jobs.id = (
        SELECT j.id FROM jobs AS j
        WHERE j.status IN ('queued', 'running') AND j.run_at <= now()
          AND (j.status = 'queued' OR j.locked_until < now())
          -- Only tasks the worker's code declares: during a rolling deploy an older worker
          -- leaves a newer task's jobs to the workers that know it.
          AND j.task = ANY(_known)
        ORDER BY j.run_at, j.id
        FOR UPDATE SKIP LOCKED
        LIMIT 1
    )
    RETURNING jobs.id, jobs.task, jobs.payload, jobs.workspace_id, jobs.attempts,
              jobs.max_attempts, jobs.lease_seconds
$$
"""

FUNCTIONS = {
    "live_api_key(bytea)": LIVE_API_KEY,
    "invitation_holder(bytea)": INVITATION_HOLDER,
    "api_key_workspace(text, bytea)": API_KEY_WORKSPACE,
    "claim_job(text, text[])": CLAIM_JOB,
}
TALLY = "rate_limit_tally(text, timestamptz, integer, text, timestamptz, text, bytea)"


def _owned_by_lookup(signature: str) -> list[str]:
    return [
        f"ALTER FUNCTION {signature} OWNER TO nps_lookup",
        f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC",
        f"GRANT EXECUTE ON FUNCTION {signature} TO nps_service",
    ]


def upgrade() -> None:
    op.execute(ROLES)
    for statement in SERVICE_GRANTS + LOOKUP_GRANTS:
        op.execute(statement)
    # A new owner needs CREATE on the schema at the moment it takes a function over; nps_lookup
    # keeps no such right.
    op.execute("GRANT CREATE ON SCHEMA public TO nps_lookup")
    for signature, definition in FUNCTIONS.items():
        op.execute(definition)
        for statement in _owned_by_lookup(signature):
            op.execute(statement)
    # The tally reads invitations by token in any workspace: the lookup role's too, now.
    op.execute(f"ALTER FUNCTION {TALLY} SECURITY DEFINER SET search_path = pg_catalog, public")
    for statement in _owned_by_lookup(TALLY):
        op.execute(statement)
    op.execute("REVOKE CREATE ON SCHEMA public FROM nps_lookup")


def downgrade() -> None:
    op.execute(f"ALTER FUNCTION {TALLY} OWNER TO CURRENT_USER")
    op.execute(f"ALTER FUNCTION {TALLY} SECURITY INVOKER RESET search_path")
    op.execute(f"GRANT EXECUTE ON FUNCTION {TALLY} TO PUBLIC")
    for signature in FUNCTIONS:
        op.execute(f"DROP FUNCTION {signature}")
    op.execute("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM nps_lookup")
    op.execute(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        "REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM nps_service"
    )
    op.execute(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE USAGE, SELECT ON SEQUENCES "
        "FROM nps_service"
    )
    op.execute("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM nps_service")
    op.execute("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM nps_service")
