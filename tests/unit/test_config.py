from __future__ import annotations

import pytest

from guildkit.config import ConfigError, load_config


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in (
        "DATABASE_URL",
        "REDIS_URL",
        "GUILDKIT_PORT",
        "GUILDKIT_SHARD_IDS",
        "GUILDKIT_SECRET_KEY",
        "GUILDKIT_ENV",
        "DISCORD_API_BASE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]


def test_database_url_becomes_asyncpg_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h:5433/db")
    config = load_config()
    assert config.sqlalchemy_url == "postgresql+asyncpg://u@h:5433/db"
    assert config.asyncpg_dsn == "postgresql://u@h:5433/db"


def test_a_malformed_value_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUILDKIT_PORT", "eighty")
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert str(caught.value).startswith("GUILDKIT_PORT:")
    assert "\n" not in str(caught.value)


def test_wrong_scheme_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "http://localhost")
    with pytest.raises(ConfigError, match=r"^REDIS_URL: must be a Redis URL"):
        load_config()


def test_shard_ids_parse_from_a_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUILDKIT_SHARD_IDS", "0, 2")
    assert load_config().shard_ids == (0, 2)


def test_env_file_is_read(tmp_path: object) -> None:
    import pathlib

    pathlib.Path(".env").write_text("REDIS_URL=redis://127.0.0.1:6390/0\n")
    assert load_config().redis_url == "redis://127.0.0.1:6390/0"


def test_placeholder_secret_refused_outside_development(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUILDKIT_ENV", "production")
    monkeypatch.setenv("GUILDKIT_SECRET_KEY", "change-me")
    with pytest.raises(ConfigError, match="GUILDKIT_SECRET_KEY"):
        load_config().session_secret()


def test_missing_database_url_names_it() -> None:
    with pytest.raises(ConfigError, match=r"^DATABASE_URL is not set"):
        _ = load_config().sqlalchemy_url
