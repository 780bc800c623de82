"""peppered key look-up: live_api_key and api_key_workspace take every form a key is stored in

API keys are stored as HMAC-SHA256 under the server's pepper; keys stored before it are still
their plain SHA-256 until first used (app.services.keys.key_hashes gives both forms, the
current first). The cross-workspace look-ups of migration 0013 take the forms as an array, and
live_api_key answers the stored form too, so authentication can store it peppered.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 10:02:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE_API_KEY = """
CREATE FUNCTION live_api_key(_key_hashes bytea[])
RETURNS TABLE (
    workspace_id uuid, id uuid, prefix varchar, scopes varchar[], last_used_at timestamptz,
    key_hash bytea
) LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    SELECT k.workspace_id, k.id, k.prefix, k.scopes, k.last_used_at, k.key_hash
    INTO workspace_id, id, prefix, scopes, last_used_at, key_hash
    FROM api_keys AS k
    WHERE k.key_hash = ANY(_key_hashes) AND k.revoked_at IS NULL
    LIMIT 1;
    IF FOUND THEN
        PERFORM set_config('app.workspace_id', workspace_id::text, true);
        RETURN NEXT;
    END IF;
END
$$
"""

API_KEY_WORKSPACE = """
CREATE FUNCTION api_key_workspace(_prefix text, _key_hashes bytea[]) RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT workspace_id FROM api_keys
    WHERE prefix = _prefix OR key_hash = ANY(_key_hashes) LIMIT 1
$$
"""

# Migration 0013's, for the downgrade.
OLD = {
    "live_api_key(bytea)": """
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
""",
    "api_key_workspace(text, bytea)": """
CREATE FUNCTION api_key_workspace(_prefix text, _key_hash bytea) RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT workspace_id FROM api_keys WHERE prefix = _prefix OR key_hash = _key_hash LIMIT 1
$$
""",
}
NEW = {
    "live_api_key(bytea[])": LIVE_API_KEY,
    "api_key_workspace(text, bytea[])": API_KEY_WORKSPACE,
}


def _owned_by_lookup(signature: str) -> list[str]:
    return [
        f"ALTER FUNCTION {signature} OWNER TO nps_lookup",
        f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC",
        f"GRANT EXECUTE ON FUNCTION {signature} TO nps_service",
    ]


def upgrade() -> None:
    for signature in OLD:
        op.execute(f"DROP FUNCTION {signature}")
    op.execute("GRANT CREATE ON SCHEMA public TO nps_lookup")
    for signature, definition in NEW.items():
        op.execute(definition)
        for statement in _owned_by_lookup(signature):
            op.execute(statement)
    op.execute("REVOKE CREATE ON SCHEMA public FROM nps_lookup")


def downgrade() -> None:
    for signature in NEW:
        op.execute(f"DROP FUNCTION {signature}")
    op.execute("GRANT CREATE ON SCHEMA public TO nps_lookup")
    for signature, definition in OLD.items():
        op.execute(definition)
        for statement in _owned_by_lookup(signature):
            op.execute(statement)
    op.execute("REVOKE CREATE ON SCHEMA public FROM nps_lookup")
