"""Configuration: a database URL is accepted as any PostgreSQL tool writes it."""

import pytest
from pydantic import ValidationError

from app.config import Settings, async_database_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            "postgresql://postgres@127.0.0.1:5432/test",
            "postgresql+asyncpg://postgres@127.0.0.1:5432/test",
        ),
        ("postgres://u:p@db/nps", "postgresql+asyncpg://u:p@db/nps"),
        ("postgresql+asyncpg://u@db/nps", "postgresql+asyncpg://u@db/nps"),
        ("postgresql+psycopg://u@db/nps", "postgresql+asyncpg://u@db/nps"),
        ("postgresql://u@db/nps?sslmode=require", "postgresql+asyncpg://u@db/nps?ssl=require"),
        (
            "postgresql://postgres:@/nps?host=/tmp/pg",
            "postgresql+asyncpg://postgres:@/nps?host=%2Ftmp%2Fpg",
        ),
    ],
)
def test_plain_urls_get_the_async_driver(given: str, expected: str) -> None:
    assert async_database_url(given) == expected


@pytest.mark.parametrize("url", ["mysql://root@localhost/db", "sqlite:///nps.db", "nonsense"])
def test_other_databases_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="only PostgreSQL"):
        async_database_url(url)


def test_settings_read_the_nps_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NPS_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    monkeypatch.setenv("NPS_PORT", "9000")
    settings = Settings()
    assert settings.database_url == "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    assert settings.port == 9000
    assert settings.read_database_url is None


def test_tombstones_are_kept_at_least_90_days(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().deletion_retention_days == 90
    monkeypatch.setenv("NPS_DELETION_RETENTION_DAYS", "365")
    assert Settings().deletion_retention_days == 365
    monkeypatch.setenv("NPS_DELETION_RETENTION_DAYS", "89")
    with pytest.raises(ValidationError, match="greater than or equal to 90"):
        Settings()


def test_the_public_url_defaults_to_where_the_service_listens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NPS_PUBLIC_URL", raising=False)
    monkeypatch.setenv("NPS_HOST", "0.0.0.0")
    monkeypatch.setenv("NPS_PORT", "9000")
    assert Settings().public_base_url == "http://0.0.0.0:9000"

    monkeypatch.setenv("NPS_PUBLIC_URL", "https://nps.example.com/")
    assert Settings().public_base_url == "https://nps.example.com"
