"""Commit-to-applied lag: measured from PostgreSQL's commit time, once per new version."""

from __future__ import annotations

from guildkit.settings.listener import PATH_CATCHUP, PATH_NOTIFY, PATH_REDIS, ChangeListener
from guildkit.settings.reader import SettingsReader
from guildkit.settings.store import SettingsStore


async def test_lag_is_observed_once_by_the_path_that_brought_the_news(
    store: SettingsStore, guild_id: int, database_url: str
) -> None:
    reader = SettingsReader(store)
    await reader.get(guild_id)  # this process serves the guild: defaults, version 0
    listener = ChangeListener(reader, store, pg_dsn=database_url)
    written = await store.patch(guild_id, {"prefix": "?"}, actor="t")
    signal = written.signal
    assert signal is not None and signal.committed_at is not None
    assert written.current.updated_at is not None
    assert signal.committed_at == written.current.updated_at.timestamp()

    listener.apply(signal, PATH_NOTIFY)
    listener.apply(signal, PATH_REDIS)  # the same news again, later, through another path
    lag = listener.stats.lag
    assert (lag[PATH_NOTIFY].total, lag[PATH_REDIS].total) == (1, 0)
    assert lag[PATH_NOTIFY].sum >= 0.0


async def test_catch_up_carries_the_commit_time_too(
    store: SettingsStore, guild_id: int, database_url: str
) -> None:
    reader = SettingsReader(store)
    await reader.get(guild_id)
    listener = ChangeListener(reader, store, pg_dsn=database_url)
    await store.patch(guild_id, {"prefix": "%"}, actor="t")
    assert await listener.catch_up() >= 1
    assert listener.stats.lag[PATH_CATCHUP].total == 1


async def test_guilds_this_process_does_not_serve_are_not_measured(
    store: SettingsStore, guild_id: int, database_url: str
) -> None:
    listener = ChangeListener(SettingsReader(store), store, pg_dsn=database_url)
    written = await store.patch(guild_id, {"prefix": "&"}, actor="t")
    assert written.signal is not None
    listener.apply(written.signal, PATH_NOTIFY)
    assert all(histogram.total == 0 for histogram in listener.stats.lag.values())


async def test_lag_is_wall_clock_from_the_commit(
    store: SettingsStore, guild_id: int, database_url: str
) -> None:
    reader = SettingsReader(store)
    await reader.get(guild_id)
    written = await store.patch(guild_id, {"prefix": "$"}, actor="t")
    assert written.signal is not None and written.signal.committed_at is not None
    applied_at = written.signal.committed_at + 0.75
    listener = ChangeListener(reader, store, pg_dsn=database_url, wall_clock=lambda: applied_at)
    listener.apply(written.signal, PATH_NOTIFY)
    histogram = listener.stats.lag[PATH_NOTIFY]
    assert abs(histogram.sum - 0.75) < 1e-6
    assert dict(histogram.cumulative())["0.5"] == 0 and dict(histogram.cumulative())["1.0"] == 1
