"""Engine construction, done once per process in its composition root."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

_CONNECT_ARGS: dict[str, Any] = {
    "timeout": 5,
    "command_timeout": 10,
    "server_settings": {"application_name": "guildkit"},
}


def create_engine(sqlalchemy_url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    """An asyncpg-backed engine whose pool survives a PostgreSQL restart.

    `pool_pre_ping` replaces connections that died with the server, and the short command
    timeout keeps a hung server from holding a reader for long.
    """
    return create_async_engine(
        sqlalchemy_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        echo=echo,
        connect_args=_CONNECT_ARGS,
    )


def create_read_engine(url: str | URL, *, pool_size: int = 10) -> AsyncEngine:
    """For the hot single-statement reads: autocommit and no pre-ping.

    On asyncpg the pre-ping alone is three round trips per checkout and the implicit
    transaction two more, against one for the query itself. A connection that died with the
    server is found on use instead; SQLAlchemy then invalidates the whole pool, and
    SettingsStore retries the read once.
    """
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        pool_recycle=1800,
        isolation_level="AUTOCOMMIT",
        connect_args=_CONNECT_ARGS,
    )
