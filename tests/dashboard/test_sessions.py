"""Server-side sessions (`dashboard_sessions`) on the real PostgreSQL: what the cookie holds, what
the table holds, expiry, logout seen by every process, purging, and PostgreSQL going away."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from guildkit.config import to_sqlalchemy_url
from guildkit.dashboard.sessions import LoginAttempt, SessionStore, open_token
from guildkit.dashboard.storage import StorageUnavailable
from guildkit.db.engine import create_engine, create_read_engine
from guildkit.db.schema import dashboard_sessions
from tests.dashboard.conftest import (
    SECRET,
    Built,
    Scene,
    client_for,
    free_port,
    login,
    stored_session,
)
from tests.support.postgres_server import PostgresServer


def _new_user() -> int:
    # Users of their own, so counting their rows ignores every other test's sessions.
    return int(time.time_ns() % 10**17) + 10**17


async def _rows_of(engine: AsyncEngine, user_id: int) -> list[Any]:
    async with engine.connect() as conn:
        query = select(dashboard_sessions).where(dashboard_sessions.c.user_id == user_id)
        return list((await conn.execute(query)).all())


async def test_cookie_round_trip_forgery_tampering_and_expiry(engine: AsyncEngine) -> None:
    store = SessionStore(engine, SECRET, max_age_seconds=3600)
    user = _new_user()
    session, cookie = await stored_session(store, user, token_expires_in=604800)
    assert await store.load(cookie) == session
    assert session.expires_at <= time.time() + 3600 + 1  # capped by the session lifetime
    short, _ = await stored_session(store, user, token_expires_in=60)
    assert short.expires_at <= time.time() + 61  # capped by the Discord token's expiry
    assert await store.load(cookie[:-2] + ("xx" if not cookie.endswith("xx") else "yy")) is None
    assert await SessionStore(engine, "j" * 40).load(cookie) is None
    assert await store.load(cookie, now=time.time() + 7200) is None
    assert await store.load(None) is None and await store.load("garbage") is None
    # A login cookie is not a session cookie, even under the same key, and the reverse.
    attempt = LoginAttempt(state="s", code_verifier="v", next_path="/")
    login_cookie = store.encode_login(attempt)
    assert await store.load(login_cookie) is None
    assert store.decode_login(login_cookie) == attempt
    assert store.decode_login(cookie) is None
    # Each session has its own secret and CSRF token.
    again, again_cookie = await stored_session(store, user)
    assert again_cookie != cookie and again.csrf_token != session.csrf_token
    assert again.key != session.key


async def test_the_table_holds_the_secrets_hash_never_the_secret(engine: AsyncEngine) -> None:
    store = SessionStore(engine, SECRET)
    user = _new_user()
    session, cookie = await stored_session(store, user)
    payload = URLSafeTimedSerializer(SECRET, salt="guildkit.dashboard.session.v2").loads(cookie)
    secret = base64.urlsafe_b64decode(payload)
    assert len(secret) == 32
    [row] = await _rows_of(engine, user)
    assert row.id == hashlib.sha256(secret).digest() == session.key == store.key_of(cookie)
    assert row.csrf_token == session.csrf_token
    # The Discord token is sealed with a key derived from the cookie's secret: a copy of the
    # table alone cannot give it back, nor can another row's secret.
    assert session.access_token not in row.access_token
    assert open_token(secret, row.access_token) == session.access_token
    assert open_token(secrets.token_bytes(32), row.access_token) is None
    assert all(secret not in v for v in row if isinstance(v, bytes) and v != row.id)
    assert cookie not in repr(tuple(row))
    # A row copied from the table does not make a cookie: the key is not the secret.
    forged = store._cookies.dumps(base64.urlsafe_b64encode(row.id).decode())
    assert await store.load(forged) is None
    # A row whose sealed token was swapped for another row's is refused, not served.
    other, other_cookie = await stored_session(store, _new_user())
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE dashboard_sessions SET access_token = :t WHERE id = :k"),
            {"t": row.access_token, "k": other.key},
        )
    assert await store.load(other_cookie) is None
    # The access token stays out of reprs (and so out of log lines that print a session).
    assert session.access_token not in repr(session)


async def test_logout_in_one_process_is_seen_by_every_other(
    engine: AsyncEngine, database_url: str
) -> None:
    # Two stores on two engines: two dashboard processes, nothing shared but PostgreSQL.
    other_engine = create_engine(to_sqlalchemy_url(database_url), pool_size=2)
    other_read = create_read_engine(other_engine.url, pool_size=2)
    try:
        here = SessionStore(engine, SECRET)
        there = SessionStore(other_engine, SECRET, read_engine=other_read)
        session, cookie = await stored_session(here, _new_user())
        seen = await there.load(cookie)
        assert seen == session
        await there.end(seen)
        assert await here.load(cookie) is None
        assert await there.load(cookie) is None
        await here.end(session)  # ending twice is harmless
    finally:
        await other_read.dispose()
        await other_engine.dispose()


async def test_expired_sessions_are_purged_on_login_in_bounded_batches(
    engine: AsyncEngine,
) -> None:
    store = SessionStore(engine, SECRET, purge_batch=3)
    user = _new_user()
    # Expired long before any other test's sessions, so they are the first to go.
    long_ago = 978307200.0  # 2001-01-01
    seeder = SessionStore(engine, SECRET, purge_batch=0)  # its logins purge nothing
    for _ in range(7):
        await stored_session(seeder, user, token_expires_in=60, now=long_ago)
    assert len(await _rows_of(engine, user)) == 7
    live, _ = await stored_session(store, user)  # this login purged 3 of them
    rows = await _rows_of(engine, user)
    assert len(rows) == 1 + 7 - 3
    assert await store.purge_expired(limit=2) == 2
    assert len(await _rows_of(engine, user)) == 1 + 7 - 3 - 2
    while await store.purge_expired():
        pass
    assert [r.id for r in await _rows_of(engine, user)] == [live.key]
    async with engine.connect() as conn:
        expired = await conn.scalar(
            select(func.count())
            .select_from(dashboard_sessions)
            .where(dashboard_sessions.c.expires_at <= func.now())
        )
    assert expired == 0


async def test_names_discord_sends_are_stored_even_with_nul_characters(
    engine: AsyncEngine,
) -> None:
    store = SessionStore(engine, SECRET)
    session, cookie = await store.create(
        user_id=str(_new_user()),
        username="a\x00b",
        display_name="<b>\x00</b>",
        avatar="\x00",
        access_token="t",
        token_expires_in=3600,
    )
    loaded = await store.load(cookie)
    assert loaded is not None and loaded.username == "a\ufffdb" == session.username
    assert loaded.display_name == "<b>\ufffd</b>" and loaded.avatar == "\ufffd"


async def test_postgres_unreachable_is_storage_unavailable_not_no_session(
    engine: AsyncEngine,
) -> None:
    _, cookie = await stored_session(SessionStore(engine, SECRET), _new_user())
    dead_engine = create_engine(
        f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/none", pool_size=1
    )
    dead = SessionStore(dead_engine, SECRET)
    try:
        with pytest.raises(StorageUnavailable, match="PostgreSQL"):
            await dead.load(cookie)
        with pytest.raises(StorageUnavailable):
            await stored_session(dead, _new_user())
        # A cookie that is not validly signed is refused without asking the database at all.
        assert await dead.load("forged.cookie.value") is None
        assert await dead.load(None) is None
    finally:
        await dead_engine.dispose()


async def test_schema_without_the_sessions_table_says_run_migrate(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.create_database("unmigrated")
    engine = create_engine(to_sqlalchemy_url(url), pool_size=1)
    store = SessionStore(engine, SECRET)
    try:
        with pytest.raises(StorageUnavailable, match="guildkit migrate"):
            await stored_session(store, _new_user())
        signed = store._cookies.dumps(base64.urlsafe_b64encode(b"\x02" * 32).decode())
        with pytest.raises(StorageUnavailable, match="guildkit migrate"):
            await store.load(signed)
    finally:
        await engine.dispose()


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_one_primary_key_lookup_per_authenticated_request(
    built: Built, client: httpx.AsyncClient, scene: Scene
) -> None:
    csrf = await login(client, scene.owner)
    url = f"/api/guilds/{scene.guild}/settings"
    requests: list[tuple[str, str, dict[str, Any] | None, dict[str, str]]] = [
        ("GET", url, None, {}),
        # Rate limited: the limiter needs the user, the route the session; one lookup serves both.
        ("PATCH", url, {"prefix": "?"}, {"X-CSRF-Token": csrf}),
        ("GET", f"/guilds/{scene.guild}/welcome", None, {}),
        ("GET", "/api/session", None, {}),
    ]
    for method, path, body, headers in requests:
        with statements(built.engine) as seen:
            response = await client.request(method, path, json=body, headers=headers)
        assert response.status_code == 200, (path, response.text)
        lookups = [s for s in seen if "dashboard_sessions" in s]
        assert len(lookups) == 1, (method, path, lookups)
        assert "WHERE dashboard_sessions.id = " in lookups[0]
    # Requests without a session cookie, and static files, never look one up.
    async with client_for(built.app) as anonymous:
        with statements(built.engine) as seen:
            assert (await anonymous.get("/api/session")).status_code == 401
            assert (await anonymous.post("/auth/logout")).status_code == 204
        assert not [s for s in seen if "dashboard_sessions" in s]
    with statements(built.engine) as seen:
        assert (await client.get("/static/app.css")).status_code == 200
        assert (await client.get("/healthz")).status_code == 200
    assert not [s for s in seen if "dashboard_sessions" in s]
