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


# A reachable database without this guildkit's tables (never migrated, or migrated by an older
# release): as unavailable as a dead server, but the fix is different, so the message says it.
_SCHEMA_BEHIND: tuple[type[BaseException], ...] = (
    asyncpg.UndefinedTableError,
    asyncpg.UndefinedColumnError,
)


def _schema_behind(exc: BaseException) -> bool:
    cause = getattr(exc, "orig", None)
    cause = getattr(cause, "__cause__", None) or cause
    return isinstance(exc, _SCHEMA_BEHIND) or isinstance(cause, _SCHEMA_BEHIND)


@asynccontextmanager
async def storage() -> AsyncIterator[None]:
    try:
        yield
    except _UNAVAILABLE as exc:
        if _schema_behind(exc):
            raise StorageUnavailable(
                "the settings database (PostgreSQL) has no or an older guildkit schema: "
                "run `guildkit migrate`; nothing was changed"
            ) from exc
        raise StorageUnavailable(
            "the settings database (PostgreSQL) is unreachable; nothing was changed, "
            "try again shortly"
        ) from exc
