"""Engine construction, done once per process in its composition root."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


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
        connect_args={
            "timeout": 5,
            "command_timeout": 10,
            "server_settings": {
                "application_name": "guildkit",
            },
        },
    )
