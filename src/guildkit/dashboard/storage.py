"""Telling "PostgreSQL is unreachable" apart from bugs, so it becomes a 503 and never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import sqlalchemy.exc


class StorageUnavailable(Exception):
    """PostgreSQL could not be reached or did not answer in time; nothing was written."""


# Connection refused/reset (OSError), connect timeouts, asyncpg's connection-level errors, and
# whatever SQLAlchemy wraps them in (a DBAPIError also covers lock_timeout and server shutdown).
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.LockNotAvailableError,
    asyncpg.AdminShutdownError,
    sqlalchemy.exc.DBAPIError,
    sqlalchemy.exc.TimeoutError,
)


@asynccontextmanager
async def storage() -> AsyncIterator[None]:
    try:
        yield
    except _UNAVAILABLE as exc:
        raise StorageUnavailable(
            "the settings database (PostgreSQL) is unreachable; nothing was changed, "
            "try again shortly"
        ) from exc
