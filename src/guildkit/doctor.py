"""Health checks of every dependency, each saying exactly what is wrong and how to fix it."""

from __future__ import annotations

import asyncio
import enum
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import httpx
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from guildkit.config import DEFAULT_DISCORD_API_BASE, ConfigError, GuildkitConfig, revealed
from guildkit.db.engine import create_engine
from guildkit.db.migrate import current_revision, head_revision
from guildkit.settings.process_status import ProcessRegistry, ProcessStatus
from guildkit.settings.redis_client import cache_client
from guildkit.settings.store import SettingsStore

STALENESS_BOUND_SECONDS = 5.0  # DESIGN §2.6


class Status(enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str | None = None


async def check_postgres(config: GuildkitConfig) -> list[Check]:
    try:
        url = config.sqlalchemy_url
    except ConfigError as exc:
        return [Check("PostgreSQL", Status.FAIL, str(exc), "set DATABASE_URL in .env")]
    try:
        conn = await asyncpg.connect(config.asyncpg_dsn, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return [
            Check(
                "PostgreSQL",
                Status.FAIL,
                f"cannot connect with DATABASE_URL: {exc}",
                "start PostgreSQL, or correct DATABASE_URL (postgresql://user@host:port/db)",
            )
        ]
    try:
        version = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    checks = [Check("PostgreSQL", Status.OK, f"connected, server {version}")]
    engine = create_engine(url, pool_size=1)
    try:
        revision = await current_revision(engine)
        head = head_revision()
        if revision != head:
            checks.append(
                Check(
                    "schema",
                    Status.FAIL,
                    f"database at revision {revision or 'none'}, code expects {head}",
                    "run `guildkit migrate`",
                )
            )
            return checks
        checks.append(Check("schema", Status.OK, f"up to date (revision {head})"))
        checks.extend(await check_bot_processes(engine))
    finally:
        await engine.dispose()
    return checks


async def check_bot_processes(engine: AsyncEngine) -> list[Check]:
    registry = ProcessRegistry(engine)
    store = SettingsStore(engine)
    latest = await store.latest_change_seq()
    processes = await registry.live()
    if not processes:
        return [
            Check(
                "bot processes",
                Status.WARN,
                "none running (no heartbeat in 15 s)",
                "start the bot: `guildkit bot` or `guildkit run`",
            )
        ]
    checks = []
    for process in processes:
        checks.append(await _bot_process(store, process, latest))
    return checks


async def _bot_process(store: SettingsStore, process: ProcessStatus, latest: int) -> Check:
    where = (
        f"shards {list(process.shard_ids)}/{process.shard_count} on {process.host} "
        f"pid {process.pid}: applied change {process.applied_change_seq} of {latest}"
    )
    behind = latest - process.applied_change_seq
    if behind <= 0:
        return Check(f"bot {process.instance_id}", Status.OK, f"{where} (up to date)")
    oldest = await store.first_commit_after(process.applied_change_seq)
    waited = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
    # Just after an edit a process is briefly behind; only past the 5 s bound is it a problem.
    status = Status.OK if waited <= STALENESS_BOUND_SECONDS else Status.WARN
    return Check(
        f"bot {process.instance_id}",
        status,
        f"{where} ({behind} behind, oldest unapplied change committed {waited:.1f} s ago)",
        None
        if status is Status.OK
        else "check the process's log and its PostgreSQL/Redis connections",
    )


async def check_redis(config: GuildkitConfig) -> Check:
    if not config.redis_url:
        return Check(
            "Redis",
            Status.OK,
            "not configured: running without a cache (slower reads, same correctness)",
        )
    client = cache_client(config.redis_url, timeout=1.0)
    try:
        started = time.perf_counter()
        await client.ping()
        elapsed = (time.perf_counter() - started) * 1000
        return Check("Redis", Status.OK, f"answering ({elapsed:.1f} ms)")
    except (RedisError, OSError) as exc:
        return Check(
            "Redis",
            Status.WARN,
            f"unreachable at REDIS_URL: {exc}; guildkit keeps working from PostgreSQL, slower",
            "start Redis or correct REDIS_URL (or unset it to run without a cache)",
        )
    finally:
        await client.aclose()


async def check_discord(config: GuildkitConfig) -> list[Check]:
    checks = []
    if not config.discord_client_id or not config.discord_client_secret:
        checks.append(
            Check(
                "Discord OAuth2",
                Status.WARN,
                "DISCORD_CLIENT_ID / DISCORD_CLIENT_SECRET not set: dashboard login will not work"
                " against real Discord (the sandbox uses its own)",
                "copy them from the Discord developer portal (OAuth2 page)",
            )
        )
    else:
        checks.append(Check("Discord OAuth2", Status.OK, "client id and secret set"))
    if not config.discord_token:
        checks.append(
            Check(
                "Discord bot",
                Status.WARN,
                "DISCORD_TOKEN not set: `guildkit run` uses the local sandbox instead",
                "set DISCORD_TOKEN to the bot token from the developer portal (Bot page)",
            )
        )
        return checks
    url = f"{config.discord_api_base}/users/@me"
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            response = await http.get(
                url, headers={"Authorization": f"Bot {revealed(config.discord_token)}"}
            )
    except httpx.HTTPError as exc:
        where = "Discord" if config.discord_api_base == DEFAULT_DISCORD_API_BASE else url
        checks.append(
            Check(
                "Discord bot",
                Status.FAIL,
                f"cannot reach {where}: {exc!r}",
                "check the network or DISCORD_API_BASE",
            )
        )
        return checks
    if response.status_code == 401:
        checks.append(
            Check(
                "Discord bot",
                Status.FAIL,
                "Discord refused DISCORD_TOKEN (401)",
                "reset the token in the developer portal and update DISCORD_TOKEN",
            )
        )
    elif response.is_success:
        name = response.json().get("username", "?")
        checks.append(Check("Discord bot", Status.OK, f"token valid: logged in as {name}"))
    else:
        checks.append(
            Check(
                "Discord bot", Status.WARN, f"unexpected answer {response.status_code} from {url}"
            )
        )
    return checks


async def run_checks(config: GuildkitConfig) -> list[Check]:
    postgres, redis, discord = await asyncio.gather(
        check_postgres(config), check_redis(config), check_discord(config)
    )
    return [*postgres, redis, *discord]
