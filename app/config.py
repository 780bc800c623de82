"""Service configuration: environment variables with the NPS_ prefix."""

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def async_database_url(url: str) -> str:
    """Turn a plain `postgresql://` URL, as every PostgreSQL tool writes it, into the asyncpg form.

    asyncpg spells libpq's `sslmode` as `ssl`, so that query parameter is renamed too.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgresql", "postgres"):
        raise ValueError("only PostgreSQL URLs are supported (postgresql://user@host:port/db)")
    query = [("ssl" if k == "sslmode" else k, v) for k, v in parse_qsl(parts.query)]
    return urlunsplit(parts._replace(scheme="postgresql+asyncpg", query=urlencode(query)))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NPS_", extra="ignore")

    env: Literal["development", "production"] = "development"
    database_url: str | None = Field(
        default=None, description="PostgreSQL URL; unset: an embedded server under data_dir"
    )
    read_database_url: str | None = Field(
        default=None, description="optional read replica for query endpoints"
    )
    data_dir: Path = Path(".data")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1)
    public_url: str | None = Field(
        default=None,
        description="the base URL stakeholders reach the service at (invitation links: "
        "<public_url>/s/<token>); unset: http://{host}:{port}",
    )
    bootstrap_api_key: str | None = Field(
        default=None,
        min_length=32,
        max_length=256,
        description="the default workspace's admin key; its first 12 characters are shown",
    )
    log_level: str = "info"
    pool_size: int = Field(default=10, ge=1)
    statement_timeout_ms: int = Field(default=30_000, ge=100)
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    idempotency_ttl_hours: int = Field(default=48, ge=24)
    worker: bool = Field(
        default=True,
        description="`nps serve` runs a background worker in-process; off: run `nps worker`",
    )
    worker_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    # Jobs one worker runs at once (a job and its lease's renewal hold up to two of the worker's
    # 2 x pool_size connections): a slow webhook receiver holds up one of them, not all the work.
    worker_concurrency: int = Field(default=4, ge=1, le=16)
    job_retention_days: int = Field(default=7, ge=1)
    # GET /v1/deletions promises integrators at least 90 days to pick up a delete.
    deletion_retention_days: int = Field(
        default=90, ge=90, description="days tombstones are kept for deletions sync (at least 90)"
    )
    # Webhook retries run for about three days and replays reach back as far as events are kept.
    event_retention_days: int = Field(
        default=30, ge=7, description="days domain events are kept for webhook replays (at least 7)"
    )

    # Webhooks (docs/webhooks.md): receivers on private or loopback addresses are refused unless
    # this is on (development and tests); cloud metadata addresses are refused always.
    webhooks_allow_private: bool = Field(
        default=False,
        description="allow webhook URLs on loopback, private and link-local addresses "
        "(development and tests only; cloud metadata addresses stay refused)",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, le=60, description="how long one webhook delivery attempt may take"
    )

    # The public calls (/v1/public/*): fixed windows counted in PostgreSQL, so every worker and
    # host shares them (app.guard). 0 turns a limit off.
    public_rate_limit_per_ip: int = Field(
        default=120,
        ge=0,
        description="requests per window from one client IP (IPv6: one /64) to the public "
        "calls, 401s included; 0: no limit",
    )
    public_rate_limit_per_token: int = Field(
        default=30, ge=0, description="requests per window with one invitation token; 0: no limit"
    )
    public_rate_limit_window_seconds: int = Field(
        default=60, ge=1, le=3600, description="the length of a rate-limit window"
    )
    cors_max_age_seconds: int = Field(
        default=600,
        ge=0,
        le=86_400,
        description="how long a browser may reuse a CORS preflight answer of the public calls",
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        description="proxies trusted to set X-Forwarded-For/-Proto (uvicorn's "
        "--forwarded-allow-ips: comma-separated addresses or networks, `*` for any); the client "
        "IP the rate limits count is the one they forward",
    )

    @property
    def public_base_url(self) -> str:
        """Where invitation links point, without a trailing slash."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @field_validator("database_url", "read_database_url")
    @classmethod
    def _normalise_url(cls, value: str | None) -> str | None:
        return async_database_url(value) if value else None


@lru_cache
def get_settings() -> Settings:
    return Settings()
