"""Assemble the settings layer for a process. Called from each process's composition root."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from guildkit.db.engine import create_read_engine
from guildkit.settings.breaker import CircuitBreaker
from guildkit.settings.listener import DEFAULT_TIMING, ChangeListener, ListenerTiming
from guildkit.settings.process_status import ProcessRegistry, ProcessReporter
from guildkit.settings.publisher import InvalidationPublisher
from guildkit.settings.reader import SettingsReader
from guildkit.settings.redis_cache import RedisSettingsCache
from guildkit.settings.redis_client import cache_client, pubsub_client
from guildkit.settings.store import SettingsStore
from guildkit.settings.writer import SettingsWriter


@dataclass
class ReadingSide:
    """What a bot process uses: the reader, the listener feeding it, and its status report."""

    store: SettingsStore
    reader: SettingsReader
    listener: ChangeListener
    reporter: ProcessReporter | None
    l2: RedisSettingsCache | None
    read_engine: AsyncEngine | None = None

    async def start(self) -> None:
        await self.listener.start()
        if self.reporter is not None:
            await self.reporter.start()

    async def stop(self) -> None:
        if self.reporter is not None:
            await self.reporter.stop()
        await self.listener.stop()
        await self.reader.aclose()
        if self.read_engine is not None:
            await self.read_engine.dispose()
        if self.l2 is not None:
            with contextlib.suppress(Exception):
                await self.l2.redis.aclose()


def build_reading_side(
    engine: AsyncEngine,
    *,
    pg_dsn: str,
    redis_url: str | None,
    pubsub_url: str | None = None,
    listen_dsn: str | None = None,
    instance_id: str | None = None,
    shard_ids: tuple[int, ...] = (0,),
    shard_count: int = 1,
    report_status: bool = True,
    timing: ListenerTiming = DEFAULT_TIMING,
    redis_timeout: float = 0.15,
    l1_ttl_seconds: float = 300.0,
) -> ReadingSide:
    """`pubsub_url` defaults to `redis_url` and `listen_dsn` to `pg_dsn`; tests point them
    through a proxy to cut one signal connection alone."""
    read_engine = create_read_engine(engine.url)
    store = SettingsStore(engine, read_engine=read_engine)
    l2 = (
        RedisSettingsCache(cache_client(redis_url, timeout=redis_timeout), timeout=redis_timeout)
        if redis_url
        else None
    )
    reader = SettingsReader(store, l2, l1_ttl_seconds=l1_ttl_seconds)
    subscribe_url = pubsub_url or redis_url
    listener = ChangeListener(
        reader,
        store,
        pg_dsn=listen_dsn or pg_dsn,
        redis_factory=(lambda: pubsub_client(subscribe_url)) if subscribe_url else None,
        timing=timing,
    )
    reporter = (
        ProcessReporter(
            ProcessRegistry(engine),
            listener,
            instance_id=instance_id or f"bot-{uuid.uuid4().hex[:12]}",
            shard_ids=shard_ids,
            shard_count=shard_count,
        )
        if report_status
        else None
    )
    return ReadingSide(
        store=store,
        reader=reader,
        listener=listener,
        reporter=reporter,
        l2=l2,
        read_engine=read_engine,
    )


@dataclass
class WritingSide:
    """What the dashboard and the CLI use: commit in PostgreSQL, then invalidate."""

    store: SettingsStore
    writer: SettingsWriter
    l2: RedisSettingsCache | None

    async def close(self) -> None:
        if self.l2 is not None:
            with contextlib.suppress(Exception):
                await self.l2.redis.aclose()


def build_writing_side(
    engine: AsyncEngine, *, redis_url: str | None, redis: Redis | None = None
) -> WritingSide:
    store = SettingsStore(engine)
    client = redis if redis is not None else (cache_client(redis_url) if redis_url else None)
    l2 = (
        RedisSettingsCache(client, breaker=CircuitBreaker(), timeout=0.2)
        if client is not None
        else None
    )
    return WritingSide(store=store, writer=SettingsWriter(store, InvalidationPublisher(l2)), l2=l2)
