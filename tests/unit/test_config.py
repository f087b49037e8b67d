from __future__ import annotations

import pathlib

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
        "GUILDKIT_PUBLIC_URL",
        "DISCORD_TOKEN",
        "DISCORD_CLIENT_SECRET",
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


def test_missing_database_url_names_it_when_the_embedded_one_is_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    # Unset DATABASE_URL means the embedded PostgreSQL (DESIGN §5); when that cannot be had,
    # the error is still one line naming the variable.
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("GUILDKIT_DATA_DIR", str(tmp_path / "a-file" / "data"))
    with pytest.raises(ConfigError, match=r"^DATABASE_URL is not set") as caught:
        _ = load_config().sqlalchemy_url
    assert "GUILDKIT_DATA_DIR" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_public_url_is_required_outside_development(monkeypatch: pytest.MonkeyPatch) -> None:
    load_config().check_public_url()  # development: built from the request, fine locally
    monkeypatch.setenv("GUILDKIT_ENV", "production")
    with pytest.raises(ConfigError, match=r"^GUILDKIT_PUBLIC_URL is not set"):
        load_config().check_public_url()
    monkeypatch.setenv("GUILDKIT_PUBLIC_URL", "https://guildkit.example.com/")
    config = load_config()
    config.check_public_url()
    assert config.public_url == "https://guildkit.example.com"


@pytest.mark.parametrize("value", ["guildkit.example.com", "javascript:alert(1)", "https://"])
def test_a_public_url_that_is_not_an_address_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("GUILDKIT_PUBLIC_URL", value)
    with pytest.raises(ConfigError, match=r"^GUILDKIT_PUBLIC_URL: must be"):
        load_config()


def test_secrets_never_show_in_a_repr_or_dump(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "DISCORD_TOKEN": "bot-token-value-123",
        "DISCORD_CLIENT_SECRET": "client-secret-value-456",
        "GUILDKIT_SECRET_KEY": "session-key-value-789" * 2,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    config = load_config()
    shown = repr(config) + str(config.model_dump()) + config.model_dump_json()
    assert not [name for name, value in values.items() if value in shown]
    assert config.session_secret() == values["GUILDKIT_SECRET_KEY"]
