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


def create_read_engine(url: str | URL, *, pool_size: int = 5) -> AsyncEngine:
    """For the hot single-statement reads: autocommit and no pre-ping.

    On asyncpg the pre-ping alone is three round trips per checkout and the implicit
    transaction two more, against one for the query itself. A connection that died with the
    server is found on use instead; SQLAlchemy then invalidates the whole pool, and
    SettingsStore retries the read once.

    A small pool and no overflow. An overflow connection is closed as soon as it goes back to
    a full pool, so under steady load past `pool_size` reads kept paying for new PostgreSQL
    backends (profiled on the dashboard at 50 clients: a tenth of its time in connect). And
    more backends than the server has cores only add contention: dashboard GETs at 50 clients
    on this 2-core machine served ~730 req/s with 10 + 10 overflow, ~860 with 20, ~970 with 10
    and ~1,430 with 5. Reads past `pool_size` wait briefly for a connection instead.
    """
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        # Waiting longer than this means the server is hung: a clear "unavailable" instead.
        pool_timeout=5,
        pool_pre_ping=False,
        pool_recycle=1800,
        isolation_level="AUTOCOMMIT",
        connect_args=_CONNECT_ARGS,
    )
