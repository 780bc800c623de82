"""rate limits of the public calls (window counters, rate_limit_tally), allowed-origins index

An UNLOGGED table of fixed-window counters, the function that counts a request, and the index
that answers a CORS preflight (which workspaces list an origin in allowed_origins).

rate_limit_tally does in one call what app.services.rate_limits.tally needs: count the client
IP's window, then the token's (only while the IP is within its quota), and say whether the
origin may read the answer (the token's workspace lists it; for no known token, any workspace).
A NULL argument skips its part. Its statements keep generic plans: the API's connections force
custom plans (app.db), which would plan these afresh on every request.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RATE_LIMIT_TALLY = """
CREATE FUNCTION rate_limit_tally(
    _ip_key text, _ip_start timestamptz, _ip_quota integer,
    _token_key text, _token_start timestamptz,
    _origin text, _token_hash bytea,
    OUT ip_hits integer, OUT token_hits integer, OUT origin_allowed boolean
) LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    IF _ip_key IS NOT NULL THEN
        INSERT INTO rate_limit_windows AS w (key, window_start, hits)
        VALUES (_ip_key, _ip_start, 1)
        ON CONFLICT (key, window_start) DO UPDATE SET hits = w.hits + 1
        RETURNING w.hits INTO ip_hits;
    END IF;
    IF _token_key IS NOT NULL AND (ip_hits IS NULL OR ip_hits <= _ip_quota) THEN
        INSERT INTO rate_limit_windows AS w (key, window_start, hits)
        VALUES (_token_key, _token_start, 1)
        ON CONFLICT (key, window_start) DO UPDATE SET hits = w.hits + 1
        RETURNING w.hits INTO token_hits;
    END IF;
    IF _origin IS NOT NULL THEN
        IF _token_hash IS NOT NULL THEN
            SELECT COALESCE(ws.settings -> 'allowed_origins', '[]'::jsonb) ? _origin
            INTO origin_allowed
            FROM invitations AS i JOIN workspaces AS ws ON ws.id = i.workspace_id
            WHERE i.token_hash = _token_hash;
        END IF;
        IF origin_allowed IS NULL THEN  -- no token, or an unknown one
            origin_allowed := EXISTS (
                SELECT FROM workspaces WHERE settings -> 'allowed_origins' ? _origin
            );
        END IF;
    END IF;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "rate_limit_windows",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", "window_start", name=op.f("pk_rate_limit_windows")),
        prefixes=["UNLOGGED"],
    )
    op.create_index(
        "ix_workspaces_allowed_origins",
        "workspaces",
        [sa.text("(settings -> 'allowed_origins')")],
        postgresql_using="gin",
    )
    op.execute(RATE_LIMIT_TALLY)


def downgrade() -> None:
    op.execute("DROP FUNCTION rate_limit_tally")
    op.drop_index("ix_workspaces_allowed_origins", table_name="workspaces")
    op.drop_table("rate_limit_windows")
