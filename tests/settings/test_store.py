"""The write transaction of DESIGN §2.1 and the reads, on real PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import json

import asyncpg
import pytest
from sqlalchemy import text

from guildkit.config import to_asyncpg_dsn
from guildkit.settings.errors import SettingsValidationError, VersionConflict, VersionNotFound
from guildkit.settings.model import DEFAULT_SETTINGS
from guildkit.settings.store import SettingsStore


async def test_a_guild_without_a_row_has_the_defaults_at_version_0(
    store: SettingsStore, guild_id: int
) -> None:
    value = await store.get(guild_id)
    assert value.version == 0 and value.settings == DEFAULT_SETTINGS
    assert await store.history(guild_id) == []


async def test_first_write_creates_version_1_with_history(
    store: SettingsStore, guild_id: int
) -> None:
    result = await store.patch(guild_id, {"prefix": "?"}, actor="tester")
    assert result.changed and result.signal is not None
    assert result.current.version == 1 and result.current.settings.prefix == "?"
    assert result.signal.version == 1 and result.signal.change_seq == result.current.change_seq
    stored = await store.get(guild_id)
    assert stored.version == 1 and stored.settings.prefix == "?" and stored.updated_by == "tester"
    (entry,) = await store.history(guild_id)
    assert (entry.version, entry.actor) == (1, "tester")
    assert entry.before["prefix"] == "!" and entry.after["prefix"] == "?"


async def test_versions_and_change_seq_increase(store: SettingsStore, guild_id: int) -> None:
    first = await store.patch(guild_id, {"prefix": "?"}, actor="a")
    second = await store.patch(guild_id, {"welcome": {"enabled": True}}, actor="b")
    assert second.current.version == 2
    assert second.current.change_seq > first.current.change_seq
    assert second.current.settings.prefix == "?", "a merge patch keeps untouched fields"
    assert [h.version for h in await store.history(guild_id)] == [2, 1]


async def test_a_no_op_patch_writes_nothing(store: SettingsStore, guild_id: int) -> None:
    await store.patch(guild_id, {"prefix": "?"}, actor="a")
    result = await store.patch(guild_id, {"prefix": "?"}, actor="a")
    assert not result.changed and result.current.version == 1
    assert len(await store.history(guild_id)) == 1


async def test_notify_is_sent_in_the_transaction(
    store: SettingsStore, guild_id: int, database_url: str
) -> None:
    received: asyncio.Queue[str] = asyncio.Queue()
    conn = await asyncpg.connect(to_asyncpg_dsn(database_url))
    try:
        await conn.add_listener("config_settings", lambda *args: received.put_nowait(args[3]))
        result = await store.patch(guild_id, {"prefix": "$"}, actor="a")
        payload = json.loads(await asyncio.wait_for(received.get(), 5))
    finally:
        await conn.close()
    assert result.current.updated_at is not None
    assert payload == {
        "guild_id": str(guild_id),
        "version": 1,
        "change_seq": result.current.change_seq,
        # Diagnostic (commit-to-applied lag): the row's updated_at, to the microsecond.
        "committed_at": round(result.current.updated_at.timestamp(), 6),
    }


@pytest.mark.parametrize(
    "patch",
    [
        {"prefix": "has space"},
        {"prefix": ["list"]},
        {"welcome": {"enabled": "yes"}},
        {"welcome": {"message": "x" * 5000}},
        {"not_a_field": True},
        {"auto_roles": ["not-a-snowflake"]},
        {"moderation": {"blocked_words": ["w"] * 500}},
        {"custom_commands": [{"name": "hi"}]},
    ],
)
async def test_invalid_patches_write_nothing(
    store: SettingsStore, guild_id: int, patch: dict[str, object]
) -> None:
    await store.patch(guild_id, {"prefix": "?"}, actor="a")
    with pytest.raises(SettingsValidationError) as caught:
        await store.patch(guild_id, patch, actor="a")
    assert caught.value.errors and all(e["loc"] for e in caught.value.errors)
    after = await store.get(guild_id)
    assert after.version == 1 and after.settings.prefix == "?"
    assert len(await store.history(guild_id)) == 1


async def test_a_rejected_first_write_creates_no_row(store: SettingsStore, guild_id: int) -> None:
    with pytest.raises(SettingsValidationError):
        await store.patch(guild_id, {"prefix": ""}, actor="a")
    assert (await store.get(guild_id)).version == 0


async def test_expected_version_conflict(store: SettingsStore, guild_id: int) -> None:
    await store.patch(guild_id, {"prefix": "?"}, actor="a", expected_version=0)
    with pytest.raises(VersionConflict) as caught:
        await store.patch(guild_id, {"prefix": "$"}, actor="b", expected_version=0)
    assert (caught.value.expected, caught.value.current) == (0, 1)
    assert (await store.get(guild_id)).settings.prefix == "?"


async def test_concurrent_patches_to_different_fields_both_survive(
    store: SettingsStore, guild_id: int
) -> None:
    await asyncio.gather(
        store.patch(guild_id, {"prefix": "?"}, actor="admin-a"),
        store.patch(guild_id, {"welcome": {"enabled": True}}, actor="admin-b"),
    )
    final = await store.get(guild_id)
    assert final.settings.prefix == "?" and final.settings.welcome.enabled
    assert final.version == 2


async def test_many_concurrent_writers_lose_nothing(store: SettingsStore, guild_id: int) -> None:
    words = [f"word{i}" for i in range(30)]

    async def add(i: int) -> None:
        await store.patch(guild_id, {"custom_commands": None}, actor=f"w{i}")  # touch
        await store.patch(
            guild_id, {"moderation": {"spam_max_messages": 2 + i % 18}}, actor=f"w{i}"
        )

    await asyncio.gather(*(add(i) for i in range(len(words))))
    history = await store.history(guild_id, limit=200)
    versions = [h.version for h in history]
    assert versions == sorted(versions, reverse=True)
    assert versions == list(range(len(history), 0, -1)), "no version skipped or duplicated"
    seqs = [h.change_seq for h in reversed(history)]
    assert seqs == sorted(seqs), "change_seq follows version order"
    for newer, older in itertools.pairwise(history):
        assert newer.before == older.after, "each write starts from the previous committed one"


async def test_revert_writes_a_new_version_with_old_content(
    store: SettingsStore, guild_id: int
) -> None:
    await store.patch(guild_id, {"prefix": "?"}, actor="a")
    await store.patch(guild_id, {"prefix": "$", "welcome": {"enabled": True}}, actor="a")
    result = await store.revert(guild_id, 1, actor="reverter")
    assert result.current.version == 3
    assert result.current.settings.prefix == "?" and not result.current.settings.welcome.enabled
    assert (await store.history(guild_id))[0].actor == "reverter"
    with pytest.raises(VersionNotFound):
        await store.revert(guild_id, 99, actor="a")
    back_to_defaults = await store.revert(guild_id, 0, actor="a")
    assert back_to_defaults.current.settings == DEFAULT_SETTINGS


async def test_get_many_is_one_query_with_defaults_for_missing(
    store: SettingsStore, guild_id: int
) -> None:
    await store.patch(guild_id, {"prefix": "?"}, actor="a")
    other = guild_id + 1
    statements: list[str] = []
    from sqlalchemy import event

    sync_engine = store.engine.sync_engine

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(sync_engine, "before_cursor_execute", count)
    try:
        values = await store.get_many([guild_id, other, guild_id])
    finally:
        event.remove(sync_engine, "before_cursor_execute", count)
    assert len([s for s in statements if "guild_settings" in s]) == 1
    assert values[guild_id].settings.prefix == "?" and values[other].version == 0


async def test_changes_since_returns_latest_per_guild_in_commit_order(
    store: SettingsStore, guild_id: int
) -> None:
    start = await store.latest_change_seq()
    await store.patch(guild_id, {"prefix": "?"}, actor="a")
    await store.patch(guild_id + 1, {"prefix": "?"}, actor="a")
    last = await store.patch(guild_id, {"prefix": "$"}, actor="a")
    changes = [
        c for c in await store.changes_since(start) if c.guild_id in {guild_id, guild_id + 1}
    ]
    assert [(c.guild_id, c.version) for c in changes] == [(guild_id + 1, 1), (guild_id, 2)]
    assert changes[-1].change_seq == last.current.change_seq


async def test_writes_are_serialised_so_change_seq_is_commit_ordered(
    store: SettingsStore, guild_id: int
) -> None:
    """While one write holds the lock, another cannot take a sequence number."""
    async with store.engine.connect() as blocker:
        await blocker.execute(text("BEGIN"))
        await blocker.execute(text("SELECT pg_advisory_xact_lock(7402311191)"))
        pending = asyncio.create_task(store.patch(guild_id, {"prefix": "?"}, actor="a"))
        await asyncio.sleep(0.3)
        assert not pending.done(), "the write must wait for the lock"
        before = await store.latest_change_seq()
        await blocker.execute(text("COMMIT"))
    result = await asyncio.wait_for(pending, 5)
    assert result.current.change_seq > before


async def test_history_pages_take_any_integers_without_a_database_error(
    store: SettingsStore, guild_id: int
) -> None:
    for prefix in "abc":
        await store.patch(guild_id, {"prefix": prefix}, actor="t")
    assert [e.version for e in await store.history(guild_id, before_version=2**63)] == [3, 2, 1]
    assert [e.version for e in await store.history(guild_id, before_version=3)] == [2, 1]
    assert await store.history(guild_id, before_version=1) == []
    assert await store.history(guild_id, before_version=-(2**63)) == []
    assert [e.version for e in await store.history(guild_id, limit=0)] == [3]
    assert len(await store.history(guild_id, limit=2**63)) == 3
