"""The abuse campaign reuses the dashboard's world: the real app on the real PostgreSQL and
Redis, Discord played by the in-process sandbox, users logged in through its OAuth2 flow."""

from __future__ import annotations

from tests.dashboard.conftest import built, client, sandbox, sb, scene

__all__ = ["built", "client", "sandbox", "sb", "scene"]
