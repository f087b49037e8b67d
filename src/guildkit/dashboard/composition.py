"""The composition root: configuration in, a ready app out. Nothing connects before it runs."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from redis.asyncio import Redis

from guildkit.config import GuildkitConfig, revealed
from guildkit.dashboard.app import create_app
from guildkit.dashboard.context import Dashboard, DashboardOptions
from guildkit.dashboard.discord_api import DiscordClient
from guildkit.dashboard.sessions import SessionStore
from guildkit.db.engine import create_engine, create_read_engine
from guildkit.settings.publisher import InvalidationPublisher
from guildkit.settings.redis_cache import RedisSettingsCache
from guildkit.settings.store import SettingsStore
from guildkit.settings.writer import SettingsWriter

HTMX_RELATIVE = Path("build/npm/node_modules/htmx.org/dist/htmx.min.js")


def find_htmx() -> Path | None:
    """htmx as the Makefile installs it: under the working directory or the source checkout."""
    checkout = Path(__file__).resolve().parents[3]
    for root in (Path.cwd(), checkout):
        candidate = root / HTMX_RELATIVE
        if candidate.is_file():
            return candidate
    return None


def build_app(config: GuildkitConfig) -> FastAPI:
    engine = create_engine(config.sqlalchemy_url)
    redis = (
        Redis.from_url(config.redis_url, socket_timeout=0.25, socket_connect_timeout=0.25)
        if config.redis_url
        else None
    )
    l2 = RedisSettingsCache(redis) if redis is not None else None
    read_engine = create_read_engine(engine.url)
    store = SettingsStore(engine, read_engine=read_engine)
    writer = SettingsWriter(store, InvalidationPublisher(l2))
    discord = DiscordClient(
        config.discord_api_base,
        client_id=config.discord_client_id,
        client_secret=revealed(config.discord_client_secret),
        bot_token=revealed(config.discord_token),
    )
    dashboard = Dashboard(
        store=store,
        writer=writer,
        discord=discord,
        sessions=SessionStore(engine, config.session_secret(), read_engine=read_engine),
        options=DashboardOptions(public_url=config.public_url, htmx_path=find_htmx()),
        redis_cache=l2,
    )

    async def close() -> None:
        await discord.aclose()
        if redis is not None:
            await redis.aclose()
        await read_engine.dispose()
        await engine.dispose()

    return create_app(dashboard, on_shutdown=close)
