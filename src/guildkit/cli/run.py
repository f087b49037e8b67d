"""`guildkit run`: the whole system on one command (DESIGN §6).

Migrate, then the bot and the dashboard as supervised children; with no DISCORD_TOKEN the
Discord stand-in too, and with no DATABASE_URL the embedded PostgreSQL of the data directory.
Ctrl-C or SIGTERM stops the children (in reverse start order) and then the embedded PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import typer

from guildkit.cli.common import config_or_exit, fail
from guildkit.config import ConfigError, GuildkitConfig, to_sqlalchemy_url
from guildkit.db.engine import create_engine
from guildkit.db.migrate import upgrade_to_head
from guildkit.logging_setup import LOG_FORMAT_ENV, setup_logging, wants_json
from guildkit.sandbox import DEFAULT_BOT_TOKEN, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from guildkit.supervisor import ChildSpec, OutputSink, RunLock, RunLockHeld, Supervisor

log = logging.getLogger("guildkit.run")

# SIGHUP too: a closed terminal or SSH session must stop the system cleanly, not orphan the
# embedded PostgreSQL mid-write.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def register(app: typer.Typer) -> None:
    app.command("run")(run)


@dataclass(frozen=True)
class Plan:
    """What `guildkit run` starts and with which settings; the summary is printed from it."""

    data_dir: Path
    database_url: str
    embedded_db: bool
    sandbox: bool
    redis: str | None
    dashboard_url: str
    sandbox_url: str | None
    children: list[ChildSpec]


def _secret_key(config: GuildkitConfig, data_dir: Path) -> str:
    """GUILDKIT_SECRET_KEY, or a random key kept in the data directory so that dashboard
    sessions survive a restart of the dashboard child."""
    if config.secret_key:
        return config.secret_key.get_secret_value()
    path = data_dir / "secret-key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def _browser_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def plan(config: GuildkitConfig, database_url: str, *, json_logs: bool) -> Plan:
    data_dir = config.data_dir.expanduser().resolve()
    python = [sys.executable, "-m", "guildkit.cli.main"]
    env = {
        "DATABASE_URL": database_url,
        "GUILDKIT_DATA_DIR": str(data_dir),
        "GUILDKIT_SECRET_KEY": _secret_key(config, data_dir),
        LOG_FORMAT_ENV: "json" if json_logs else "text",
        "PYTHONUNBUFFERED": "1",
    }
    sandbox = config.discord_token is None
    children: list[ChildSpec] = []
    sandbox_url = None
    if sandbox:
        sandbox_url = f"http://127.0.0.1:{config.sandbox_port}"
        env |= {
            "DISCORD_API_BASE": f"{sandbox_url}/api/v10",
            "DISCORD_TOKEN": DEFAULT_BOT_TOKEN,
            "DISCORD_CLIENT_ID": DEFAULT_CLIENT_ID,
            "DISCORD_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
        }
        children.append(
            ChildSpec(
                "sandbox",
                [*python, "sandbox", "--port", str(config.sandbox_port)],
                env,
                ready_url=f"{sandbox_url}/_sandbox/info",
                gates_next=True,
            )
        )
    dashboard_url = f"http://{_browser_host(config.host)}:{config.port}"
    bot_ready = (
        f"http://127.0.0.1:{config.bot_metrics_port}/metrics" if config.bot_metrics_port else None
    )
    children.append(ChildSpec("bot", [*python, "bot"], env, ready_url=bot_ready, ready_timeout=30))
    children.append(
        ChildSpec("dashboard", [*python, "dashboard"], env, ready_url=f"{dashboard_url}/healthz")
    )
    return Plan(
        data_dir=data_dir,
        database_url=database_url,
        embedded_db=config.uses_embedded_database,
        sandbox=sandbox,
        redis=config.redis_url,
        dashboard_url=dashboard_url,
        sandbox_url=sandbox_url,
        children=children,
    )


def _where(url: str) -> str:
    """A URL with any password removed, for printing."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def summary(p: Plan) -> dict[str, str]:
    db = (
        f"embedded, in {p.data_dir / 'postgres'}"
        if p.embedded_db
        else f"external, {_where(p.database_url)}"
    )
    return {
        "dashboard": p.dashboard_url,
        "sandbox_chat": f"{p.sandbox_url}/chat" if p.sandbox_url else "-",
        "discord": "sandbox stand-in (DISCORD_TOKEN unset)" if p.sandbox else "real Discord",
        "postgresql": db,
        "redis": f"external, {_where(p.redis)}" if p.redis else "none (REDIS_URL unset)",
        "data": str(p.data_dir),
    }


def print_summary(p: Plan, *, json_logs: bool, not_ready: list[str]) -> None:
    facts = summary(p)
    if json_logs:
        log.info("guildkit is running", extra=facts | {"not_ready": not_ready})
        return
    lines = ["", "guildkit is running (Ctrl-C stops everything)"]
    labels = {
        "dashboard": "dashboard",
        "sandbox_chat": "sandbox chat",
        "discord": "Discord",
        "postgresql": "PostgreSQL",
        "redis": "Redis",
        "data": "data",
    }
    lines += [f"  {labels[key]:<13} {value}" for key, value in facts.items()]
    if not_ready:
        lines.append(f"  not ready yet: {', '.join(not_ready)} (see their output above)")
    typer.echo("\n".join(lines) + "\n")


async def _migrate(database_url: str) -> None:
    engine = create_engine(to_sqlalchemy_url(database_url), pool_size=1)
    try:
        await upgrade_to_head(engine)
    finally:
        await engine.dispose()


async def _supervise(p: Plan, output: OutputSink, *, json_logs: bool) -> None:
    supervisor = Supervisor(p.children, output)
    loop = asyncio.get_running_loop()
    for sig in _STOP_SIGNALS:
        loop.add_signal_handler(sig, supervisor.request_stop)
    try:
        not_ready = await supervisor.start()
        if not supervisor.stop_requested.is_set():
            print_summary(p, json_logs=json_logs, not_ready=not_ready)
        await supervisor.stop_requested.wait()
        log.info("stopping")
    finally:
        await supervisor.stop()
        for sig in _STOP_SIGNALS:
            loop.remove_signal_handler(sig)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _interrupt_on_stop_signals() -> None:
    """Outside the supervisor's event loop (set-up, final shutdown), any stop signal unwinds
    through the `finally` blocks, so the embedded PostgreSQL and the lock are still released."""
    for sig in _STOP_SIGNALS:
        signal.signal(sig, _interrupt)


def _already_stopping(_signum: int, _frame: object) -> None:
    log.warning("already stopping: waiting for PostgreSQL to shut down cleanly")


def run() -> None:
    """Run everything: migrations, then the bot, the dashboard and (offline) the sandbox."""
    _interrupt_on_stop_signals()
    try:
        _run()
    except KeyboardInterrupt:
        log.info("interrupted")
        raise typer.Exit(130) from None


def _run() -> None:
    config = config_or_exit()
    json_logs = wants_json(sys.stdout)
    setup_logging("run")
    data_dir = config.data_dir.expanduser().resolve()
    lock = RunLock(data_dir / "run.lock")
    try:
        lock.acquire()
    except RunLockHeld as held:
        fail(
            f"guildkit run is already running on {data_dir} ({held}); stop it first, "
            "or set GUILDKIT_DATA_DIR to another directory to run a second, separate system"
        )
    embedded = None
    try:
        if config.uses_embedded_database:
            from guildkit.embedded_pg import embedded_for

            embedded = embedded_for(data_dir)
        try:
            config.check_public_url()  # before any child starts, not after it crash-loops
            database_url = config.effective_database_url
            asyncio.run(_migrate(database_url))
        except ConfigError as exc:
            fail(str(exc), 2)
        except OSError as exc:
            fail(f"cannot reach PostgreSQL at DATABASE_URL: {exc}")
        log.info("database schema is up to date")
        p = plan(config, database_url, json_logs=json_logs)
        output = OutputSink(json_mode=json_logs)
        try:
            asyncio.run(_supervise(p, output, json_logs=json_logs))
        finally:
            # From here on only PostgreSQL's clean shutdown is left: let it finish.
            for sig in _STOP_SIGNALS:
                signal.signal(sig, _already_stopping)
    finally:
        if embedded is not None:
            # Last: the children have exited, so this is a clean shutdown unless some other
            # guildkit command still uses the server (then the last of them stops it).
            if embedded.release():
                log.info("embedded PostgreSQL stopped")
            else:
                log.info("embedded PostgreSQL left running for another guildkit process")
        lock.release()
    log.info("guildkit stopped")
