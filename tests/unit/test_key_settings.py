"""The secrets around API keys: the pepper they are hashed with, and a bootstrap key that must
not be guessable."""

import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import PEPPER_FILE, Settings, guessable_bits, key_pepper

GENERATED = "nps_k3C9vQm1Zr8xYw2TbLp0HsJd6NfGaUe4RiOc7VtEyq5"


class TestPepper:
    def test_production_requires_one(self) -> None:
        with pytest.raises(ValidationError) as caught:
            Settings(env="production", database_url="postgresql://u@db/nps")
        [error] = caught.value.errors()
        assert error["loc"] == ("key_pepper",)
        assert error["msg"] == (
            "Value error, required in production (e.g. `openssl rand -base64 48`)"
        )

    def test_the_configured_one_is_used(self, tmp_path: Path) -> None:
        settings = Settings(key_pepper="p" * 8 + "e" * 8 + "x" * 16, data_dir=tmp_path)
        assert key_pepper(settings) == b"pppppppp" + b"eeeeeeee" + b"x" * 16
        assert not (tmp_path / PEPPER_FILE).exists()

    def test_development_generates_one_under_the_data_dir_once(self, tmp_path: Path) -> None:
        settings = Settings(data_dir=tmp_path / "data")
        first = key_pepper(settings)
        again = key_pepper(Settings(data_dir=tmp_path / "data"))
        elsewhere = key_pepper(Settings(data_dir=tmp_path / "other"))

        assert first == again != elsewhere
        assert len(first) >= 48
        path = tmp_path / "data" / PEPPER_FILE
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert [p.name for p in path.parent.iterdir()] == [PEPPER_FILE]  # no draft left


class TestBootstrapKey:
    @pytest.mark.parametrize(
        "key",
        [
            "nps_" + "a" * 40,
            "nps_aaaabbbbccccddddeeeeffffgggghhhh",
            "0123456789012345678901234567890123456789",
        ],
    )
    def test_a_guessable_one_is_refused(self, key: str) -> None:
        with pytest.raises(ValidationError) as caught:
            Settings(bootstrap_api_key=key)
        [error] = caught.value.errors()
        assert error["loc"] == ("bootstrap_api_key",)
        assert error["msg"].startswith("Value error, looks guessable (about ")

    def test_a_random_one_is_accepted(self) -> None:
        assert Settings(bootstrap_api_key=GENERATED).bootstrap_api_key == GENERATED

    def test_the_estimate_grows_with_length_and_variety(self) -> None:
        assert guessable_bits("a" * 64) == 0
        assert guessable_bits("ab" * 32) == 64
        assert guessable_bits(GENERATED) > 128
