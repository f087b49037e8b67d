"""Process configuration from the environment and `.env` (DESIGN §5).

Every command builds one `GuildkitConfig` in its composition root; nothing reads the environment
anywhere else. A missing or malformed value becomes `ConfigError`, whose message is one line that
names the variable, so the CLI can print it instead of a traceback.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DISCORD_API_BASE = "https://discord.com/api/v10"
PLACEHOLDER_SECRET_KEYS = frozenset({"", "change-me", "changeme", "secret", "dev"})


class ConfigError(Exception):
    """A configuration value is missing or malformed; the message names the variable."""


class GuildkitConfig(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    redis_url: str | None = Field(default=None, alias="REDIS_URL")
    # Secrets are SecretStr so that no repr, log line or validation error can show them.
    discord_token: SecretStr | None = Field(default=None, alias="DISCORD_TOKEN")
    discord_client_id: str | None = Field(default=None, alias="DISCORD_CLIENT_ID")
    discord_client_secret: SecretStr | None = Field(default=None, alias="DISCORD_CLIENT_SECRET")
    discord_api_base: str = Field(default=DEFAULT_DISCORD_API_BASE, alias="DISCORD_API_BASE")
    secret_key: SecretStr | None = Field(default=None, alias="GUILDKIT_SECRET_KEY")
    public_url: str | None = Field(default=None, alias="GUILDKIT_PUBLIC_URL")
    host: str = Field(default="127.0.0.1", alias="GUILDKIT_HOST")
    port: int = Field(default=8080, ge=1, le=65535, alias="GUILDKIT_PORT")
    sandbox_port: int = Field(default=8090, ge=1, le=65535, alias="GUILDKIT_SANDBOX_PORT")
    bot_metrics_port: int = Field(default=9108, ge=0, le=65535, alias="GUILDKIT_BOT_METRICS_PORT")
    data_dir: Path = Field(default=Path(".guildkit"), alias="GUILDKIT_DATA_DIR")
    shard_ids: Annotated[tuple[int, ...] | None, NoDecode] = Field(
        default=None, alias="GUILDKIT_SHARD_IDS"
    )
    shard_count: int | None = Field(default=None, ge=1, alias="GUILDKIT_SHARD_COUNT")
    environment: str = Field(default="development", alias="GUILDKIT_ENV")

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in {"postgresql", "postgres", "postgresql+asyncpg"}:
            raise ValueError("must be a libpq URL such as postgresql://user@host:5432/guildkit")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if urlsplit(value).scheme not in {"redis", "rediss", "unix"}:
            raise ValueError("must be a Redis URL such as redis://127.0.0.1:6379/0")
        return value

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError("must be the dashboard's address such as https://guildkit.example.com")
        return value.rstrip("/")

    @field_validator("discord_api_base")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if urlsplit(value).scheme not in {"http", "https"}:
            raise ValueError("must be an http(s) URL such as https://discord.com/api/v10")
        return value.rstrip("/")

    @field_validator("shard_ids", mode="before")
    @classmethod
    def _parse_shard_ids(cls, value: Any) -> Any:
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                return tuple(int(part) for part in value.replace(" ", "").split(",") if part)
            except ValueError:
                raise ValueError("must be comma-separated shard numbers such as 0,1") from None
        return value

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def effective_database_url(self) -> str:
        """DATABASE_URL, or with it unset the embedded PostgreSQL of GUILDKIT_DATA_DIR, which
        is started here unless another guildkit process already runs it (DESIGN §5)."""
        if self.database_url is not None:
            return self.database_url
        # Imported here: only commands that touch the database pay for (and need) it.
        from guildkit.embedded_pg import EmbeddedPostgresError, resolve_database_url

        try:
            return resolve_database_url(None, self.data_dir)
        except EmbeddedPostgresError as exc:
            detail = " / ".join(str(exc).splitlines())
            raise ConfigError(
                f"DATABASE_URL is not set and the embedded PostgreSQL in "
                f"GUILDKIT_DATA_DIR={self.data_dir} is unavailable: {detail}"
            ) from None

    @property
    def sqlalchemy_url(self) -> str:
        """The effective database URL in SQLAlchemy's asyncpg dialect form."""
        return to_sqlalchemy_url(self.effective_database_url)

    @property
    def asyncpg_dsn(self) -> str:
        """The DATABASE_URL in the plain form asyncpg.connect() takes."""
        return to_asyncpg_dsn(self.sqlalchemy_url)

    def check_public_url(self) -> None:
        """Outside development the dashboard's address must be configured: otherwise the OAuth2
        redirect URI would be built from the request's Host header, which a client controls."""
        if self.public_url is None and self.environment != "development":
            raise ConfigError(
                "GUILDKIT_PUBLIC_URL is not set: outside development the dashboard needs its "
                "public address (e.g. https://guildkit.example.com) for the Discord redirect URI"
            )

    def session_secret(self) -> str:
        """The session-signing key; a random one (sessions die on restart) only in development."""
        key = revealed(self.secret_key)
        if key and key not in PLACEHOLDER_SECRET_KEYS:
            return key
        if self.environment == "development":
            return secrets.token_urlsafe(32)
        raise ConfigError(
            "GUILDKIT_SECRET_KEY is missing or a placeholder: set it to a long random string "
            "(python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )


def revealed(secret: SecretStr | None) -> str | None:
    """A secret's value, for the one place that hands it to the service that needs it."""
    return None if secret is None else secret.get_secret_value()


def to_sqlalchemy_url(url: str) -> str:
    scheme, rest = url.split("://", 1)
    if scheme in {"postgresql", "postgres"}:
        scheme = "postgresql+asyncpg"
    return f"{scheme}://{rest}"


def to_asyncpg_dsn(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"postgresql://{rest}" if scheme.startswith("postgres") else url


def load_config(**overrides: Any) -> GuildkitConfig:
    """Build the configuration, turning pydantic's report into one line per bad variable."""
    try:
        return GuildkitConfig(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "configuration"
            alias = (
                GuildkitConfig.model_fields[name].alias
                if name in GuildkitConfig.model_fields
                else name
            )
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{alias or name}: {message}")
        raise ConfigError("; ".join(problems)) from None
