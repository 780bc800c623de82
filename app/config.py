"""Service configuration: environment variables with the NPS_ prefix."""

import math
import os
import secrets
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator
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


# A key chosen by hand must be as hard to guess as a generated one (256 random bits) is by far.
MIN_KEY_BITS = 128
MIN_KEY_SYMBOLS = 16


def guessable_bits(key: str) -> float:
    """An optimistic estimate of a key's entropy: its length times the Shannon entropy of its
    characters' frequencies (repeats and small alphabets score low; it cannot see a pattern)."""
    counts = Counter(key)
    per_char = -sum(n / len(key) * math.log2(n / len(key)) for n in counts.values())
    return per_char * len(key)


DEFAULT_READ_SLOTS = 1


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NPS_", extra="ignore")

    env: Literal["development", "production"] = "development"
    docs_in_production: bool = Field(
        default=False,
        description="serve /docs, /redoc and /openapi.json when NPS_ENV is production",
    )
    database_url: str | None = Field(
        default=None, description="PostgreSQL URL; unset: an embedded server under data_dir"
    )
    migration_database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL of the tables' owner, for `nps migrate` (and the "
        "development server's own migration); unset: NPS_DATABASE_URL. The service itself "
        "connects as a role that owns nothing (README: Row-level security)",
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
    key_pepper: SecretStr | None = Field(
        default=None,
        min_length=32,
        validate_default=True,
        description="the server-side secret API keys are hashed with (HMAC-SHA256); required in "
        "production; unset in development: generated once under data_dir",
    )
    log_level: str = "info"
    log_format: Literal["json", "text"] = Field(
        default="json",
        description="`nps serve`'s log lines: JSON objects with the request id (app.logs), or "
        "uvicorn's plain text",
    )
    pool_size: int = Field(default=10, ge=1)
    report_cache_entries: int = Field(
        default=256,
        ge=0,
        description="score and analytics answers kept per web process, by ETag, for the next "
        "identical query (least recently used first out; 0: no cache)",
    )
    # Overload (README "Pools, timeouts and overload"): reads take turns for a share of the pool,
    # and a request that cannot get a connection or a turn soon is told the service is busy.
    read_concurrency: int | None = Field(
        default=None,
        ge=1,
        description="read requests (reports, trends, lists; not lookups by id) served at once per "
        "web process; "
        "the others wait their turn; unset: 1, so heavy "
        "reports leave the process's event loop, its connections and the database's cores to "
        "the writes",
    )
    read_queue: int = Field(
        default=8,
        ge=0,
        le=10_000,
        description="reads that may wait for a turn at once per web process; a read that "
        "finds that many waiting is told at once that the service is busy, before any of its "
        "work (0: a read is served only when a turn is free)",
    )
    pool_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="how long a request waits for a database connection or a read turn "
        "before a 503 /problems/busy with Retry-After",
    )
    statement_timeout_ms: int = Field(default=30_000, ge=100)
    command_timeout_seconds: float = Field(
        default=35.0,
        gt=0,
        le=3600,
        description="the client's own bound on any database call (asyncpg's command_timeout), "
        "for a server that stops answering; keep it above NPS_STATEMENT_TIMEOUT_MS, which "
        "cancels a slow query cleanly first",
    )
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    # Slow clients (README "Connections, bodies and slow clients").
    body_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="a request body not fully arrived this long after its headers is answered "
        "408 (nothing of it is stored) and its connection closed",
    )
    max_connections: int = Field(
        default=1000,
        ge=2,
        description="open connections per web process (uvicorn's limit_concurrency): a request "
        "that arrives while this many are open, its own included, is answered 503 at once",
    )
    keep_alive_seconds: int = Field(
        default=5,
        ge=1,
        le=3600,
        description="an idle keep-alive connection is closed after this many seconds",
    )
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
    # Imports (README "Import and export").
    import_max_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1024,
        description="the largest file POST /v1/imports takes (the body of that path only; "
        "every other body keeps NPS_MAX_BODY_BYTES)",
    )
    import_body_timeout_seconds: float = Field(
        default=1800.0,
        gt=0,
        le=86400,
        description="how long an upload to POST /v1/imports may take to arrive",
    )
    import_chunk_rows: int = Field(
        default=5000,
        ge=1,
        le=100_000,
        description="rows an import merges per transaction (its progress, and where a cancel "
        "stops, move by this many)",
    )
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
    # The authenticated API (/v1/* but the public calls): counted in each process and shared
    # through PostgreSQL about once a second (app.local_limits). 0 turns a limit off.
    api_rate_limit_per_key: int = Field(
        default=60_000, ge=0, description="requests per window with one API key; 0: no limit"
    )
    api_rate_limit_per_ip: int = Field(
        default=120_000,
        ge=0,
        description="requests per window from one client IP (IPv6: one /64) to the "
        "authenticated API; 0: no limit",
    )
    api_failed_auth_per_ip: int = Field(
        default=30,
        ge=0,
        description="look-ups of API keys not seen to work lately, per window from one client "
        "IP (a brute force's guesses); past it such keys are refused (429) without a look-up; "
        "0: no limit",
    )
    api_refusal_delay_seconds: float = Field(
        default=1.0,
        ge=0,
        le=10,
        description="how long a wrong key's refusal from memory (401 or 429) is held back; 0: "
        "answered at once",
    )
    api_rate_limit_window_seconds: int = Field(
        default=60, ge=1, le=3600, description="the length of an API rate-limit window"
    )
    rate_limit_flush_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="how often each process shares its rate-limit counts with the others",
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
    def read_slots(self) -> int:
        """Read requests served at once per web process (NPS_READ_CONCURRENCY).

        Unset, one: under 300 concurrent heavy reports, 10 at once per process (the pool
        size) kept the event loop and PostgreSQL's cores busy with reports, and writes waited
        seconds (README: Pools, timeouts and overload)."""
        return self.read_concurrency or min(DEFAULT_READ_SLOTS, self.pool_size)

    @property
    def public_base_url(self) -> str:
        """Where invitation links point, without a trailing slash."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def owner_database_url(self) -> str | None:
        """Where migrations run: the owner's URL, else the service's."""
        return self.migration_database_url or self.database_url

    @field_validator("bootstrap_api_key")
    @classmethod
    def _hard_to_guess(cls, value: str | None) -> str | None:
        if value is None:
            return None
        bits = guessable_bits(value)
        if bits < MIN_KEY_BITS or len(set(value)) < MIN_KEY_SYMBOLS:
            raise ValueError(
                f"looks guessable (about {bits:.0f} bits, at least {MIN_KEY_BITS} wanted): use "
                "a random key, e.g. `nps_$(openssl rand -base64 32 | tr +/ -_ | tr -d =)`"
            )
        return value

    @field_validator("key_pepper")
    @classmethod
    def _pepper_in_production(
        cls, value: SecretStr | None, info: ValidationInfo
    ) -> SecretStr | None:
        if value is None and info.data.get("env") == "production":
            raise ValueError("required in production (e.g. `openssl rand -base64 48`)")
        return value

    @field_validator("database_url", "migration_database_url", "read_database_url")
    @classmethod
    def _normalise_url(cls, value: str | None) -> str | None:
        return async_database_url(value) if value else None


@lru_cache
def get_settings() -> Settings:
    return Settings()


PEPPER_FILE = "key_pepper"


def key_pepper(settings: Settings) -> bytes:
    """NPS_KEY_PEPPER, else (development) the one generated under data_dir on first use."""
    if settings.key_pepper is not None:
        return settings.key_pepper.get_secret_value().encode()
    path = settings.data_dir / PEPPER_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Written whole under another name, then linked: a process starting at the same moment
    # reads either no file or the complete one, and the first link wins.
    draft = path.with_name(f".{PEPPER_FILE}.{os.getpid()}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(48))
    try:
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_bytes().strip()
