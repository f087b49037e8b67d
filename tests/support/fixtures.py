"""Pytest fixtures for fault injection on private servers (loaded via `pytest_plugins`).

Every fixture here owns its processes and kills them at teardown, also when the test failed
or left a server SIGSTOPped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Protocol

import pytest

from guildkit.config import to_sqlalchemy_url
from guildkit.db.engine import create_engine
from guildkit.db.migrate import upgrade_to_head
from tests.support.postgres_server import PostgresServer
from tests.support.processes import ChildProcess
from tests.support.redis_server import RedisServer
from tests.support.tcp_proxy import TcpProxy

GUILDKIT_DB = "guildkit"


class ProxyFactory(Protocol):
    def __call__(self, target_host: str, target_port: int) -> TcpProxy: ...


class PythonChildFactory(Protocol):
    def __call__(
        self, module: str, *args: str, env: Mapping[str, str] | None = None
    ) -> ChildProcess: ...


async def _migrate(libpq_url: str) -> None:
    engine = create_engine(to_sqlalchemy_url(libpq_url), pool_size=1)
    try:
        await upgrade_to_head(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def guildkit_pg_template() -> Iterator[Path]:
    """A stopped cluster's data directory holding the migrated `guildkit` database.

    Migrating once and copying the result costs ~0.05 s per test instead of ~0.4 s.
    """
    server = PostgresServer()
    try:
        server.create_database(GUILDKIT_DB)
        asyncio.run(_migrate(server.url_for(GUILDKIT_DB)))
        # A clean shutdown leaves a consistent directory, safe to copy.
        server.stop("fast")
        yield server.data_dir
    finally:
        server.close()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server; `redis_server.url` for the code under test."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def postgres_server(guildkit_pg_template: Path) -> Iterator[PostgresServer]:
    """A private PostgreSQL 15 with a migrated `guildkit` database:
    `postgres_server.url_for("guildkit")` (libpq URL)."""
    with PostgresServer(template=guildkit_pg_template) as server:
        yield server


@pytest.fixture
def tcp_proxy() -> Iterator[ProxyFactory]:
    """Factory: `tcp_proxy(host, port)` -> a started TcpProxy on its own thread."""
    proxies: list[TcpProxy] = []

    def make(target_host: str, target_port: int) -> TcpProxy:
        proxy = TcpProxy(target_host, target_port).start_in_thread()
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()


@pytest.fixture
def python_child() -> Iterator[PythonChildFactory]:
    """Factory: `python_child("some.module", "arg", env={...})` -> a running ChildProcess."""
    children: list[ChildProcess] = []

    def spawn(module: str, *args: str, env: Mapping[str, str] | None = None) -> ChildProcess:
        child = ChildProcess.python_module(module, *args, env=env)
        children.append(child)
        return child

    yield spawn
    for child in children:
        child.kill()
