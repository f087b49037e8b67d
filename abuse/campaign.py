"""The abuse campaign against real dashboard processes (uvicorn, as `guildkit dashboard` runs it).

Unlike tests/abuse (in-process), this one reads the processes' own output, uvicorn's access log
included, to check that no secret ever reaches a log; and it attacks over real HTTP. Two
dashboard processes share the database, as behind a load balancer: a cookie is replayed on the
one that did not handle its logout. Discord is the sandbox with secrets made up for this run; the
database is a throwaway one on the test PostgreSQL server (GUILDKIT_TEST_PG_URL), dropped at the
end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx

from guildkit.config import to_asyncpg_dsn, to_sqlalchemy_url
from guildkit.dashboard.sessions import SESSION_COOKIE
from guildkit.db.engine import create_engine
from guildkit.db.migrate import upgrade_to_head
from guildkit.sandbox.client import SandboxClient
from guildkit.sandbox.runner import run_sandbox

BASE_PG_URL = os.environ.get(
    "GUILDKIT_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("GUILDKIT_TEST_REDIS_URL", "redis://127.0.0.1:6379")
MERGE = "application/merge-patch+json"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Campaign:
    checks: list[Check] = field(default_factory=list)

    def record(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append(Check(name, ok, detail))
        print(f"{'PASS' if ok else 'FAIL'} {name} {detail}", flush=True)

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.checks)


@contextlib.asynccontextmanager
async def throwaway_database() -> AsyncIterator[str]:
    name = f"guildkit_abuse_{uuid.uuid4().hex[:12]}"
    url = BASE_PG_URL.rsplit("/", 1)[0] + "/" + name
    conn = await asyncpg.connect(to_asyncpg_dsn(BASE_PG_URL))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        engine = create_engine(to_sqlalchemy_url(url))
        try:
            await upgrade_to_head(engine)
        finally:
            await engine.dispose()
        yield url
    finally:
        conn = await asyncpg.connect(to_asyncpg_dsn(BASE_PG_URL))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def dashboard_process(env: dict[str, str], log_path: Path, port: int) -> AsyncIterator[str]:
    """`guildkit dashboard` in a child process, its output in `log_path`; its base URL."""
    log = log_path.open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from guildkit.cli.main import main; main()",
        "dashboard",
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as probe:
            for _ in range(100):
                with contextlib.suppress(httpx.HTTPError):
                    if (await probe.get(f"{base}/healthz")).status_code == 200:
                        break
                if process.returncode is not None:
                    raise RuntimeError(f"the dashboard exited: see {log_path}")
                await asyncio.sleep(0.2)
            else:
                raise RuntimeError(f"the dashboard never became healthy: see {log_path}")
        yield base
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=10)
        except TimeoutError:
            process.kill()
            await process.wait()
        log.close()


async def login(client: httpx.AsyncClient, user_id: int) -> str:
    start = await client.get("/auth/login")
    async with httpx.AsyncClient() as browser:
        consent = await browser.get(f"{start.headers['location']}&sandbox_user={user_id}")
    back = urlsplit(consent.headers["location"])
    done = await client.get(f"{back.path}?{back.query}")
    if done.status_code != 303:
        raise RuntimeError(f"login failed: {done.status_code} {done.text[:200]}")
    token: str = (await client.get("/api/session")).json()["csrf_token"]
    return token


async def run(report_path: Path) -> bool:
    campaign = Campaign()
    secret_key = f"abuse-secret-key-{secrets.token_urlsafe(32)}"
    bot_token = f"abuse-bot-token-{secrets.token_urlsafe(24)}"
    client_secret = f"abuse-client-secret-{secrets.token_urlsafe(24)}"
    access_tokens: list[str] = []
    log_paths = [report_path.parent / "dashboard.log", report_path.parent / "dashboard2.log"]
    started = time.monotonic()
    async with (
        throwaway_database() as database_url,
        run_sandbox(bot_token=bot_token, client_secret=client_secret) as sandbox,
        SandboxClient(sandbox.base_url) as control,
    ):
        scene = await _scene(control)
        ports = [free_port(), free_port()]
        env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "DISCORD_TOKEN": bot_token,
            "DISCORD_CLIENT_ID": sandbox.client_id,
            "DISCORD_CLIENT_SECRET": client_secret,
            "DISCORD_API_BASE": sandbox.api_base,
            "GUILDKIT_SECRET_KEY": secret_key,
            "GUILDKIT_ENV": "production",
        }
        async with (
            dashboard_process(
                {
                    **env,
                    "GUILDKIT_PORT": str(ports[0]),
                    "GUILDKIT_PUBLIC_URL": f"http://127.0.0.1:{ports[0]}",
                },
                log_paths[0],
                ports[0],
            ) as base,
            dashboard_process(
                {
                    **env,
                    "GUILDKIT_PORT": str(ports[1]),
                    "GUILDKIT_PUBLIC_URL": f"http://127.0.0.1:{ports[1]}",
                },
                log_paths[1],
                ports[1],
            ) as other,
        ):
            await _attack(campaign, base, other, scene, database_url, access_tokens)
    logs = "\n".join(path.read_text(errors="replace") for path in log_paths)
    hidden = {
        "bot token": bot_token,
        "OAuth client secret": client_secret,
        "GUILDKIT_SECRET_KEY": secret_key,
        **{f"access token #{i}": t for i, t in enumerate(access_tokens)},
    }
    leaked = [name for name, value in hidden.items() if value in logs]
    if re.search(r"[?&]code=(?!\[redacted\])", logs):
        leaked.append("an OAuth2 authorization code")
    campaign.record(
        "no secret in the dashboard's output (app and access logs)",
        not leaked and "GET /healthz" in logs,
        f"{len(logs.splitlines())} log lines, {len(hidden)} secrets; leaked: {leaked or 'none'}",
    )
    _write_report(report_path, campaign, time.monotonic() - started)
    return campaign.passed


@dataclass
class AbuseScene:
    owner: int
    member: int
    outsider: int
    guild: int


async def _scene(control: SandboxClient) -> AbuseScene:
    owner = await control.create_user("owner")
    member = await control.create_user("member")
    outsider = await control.create_user("outsider")
    guild = await control.create_guild("Abused", owner.id)
    await control.create_guild("Elsewhere", outsider.id)
    await control.add_member(guild.id, member.id)
    await control.create_channel(guild.id, "general")
    return AbuseScene(owner.id, member.id, outsider.id, guild.id)


async def _access_tokens(database_url: str) -> list[str]:
    """Every Discord access token the dashboards hold (so the checks can look for leaks)."""
    conn = await asyncpg.connect(to_asyncpg_dsn(database_url))
    try:
        return [
            r["access_token"]
            for r in await conn.fetch("SELECT access_token FROM dashboard_sessions")
        ]
    finally:
        await conn.close()


async def _attack(
    campaign: Campaign,
    base: str,
    other: str,
    scene: AbuseScene,
    database_url: str,
    access_tokens: list[str],
) -> None:
    settings = f"/api/guilds/{scene.guild}/settings"

    async def step(name: str, body: Callable[[], Awaitable[tuple[bool, str]]]) -> None:
        try:
            ok, detail = await body()
        except Exception as exc:  # a crashed step is a failed check, not the end
            ok, detail = False, f"raised {exc!r}"
        campaign.record(name, ok, detail)

    async with (
        httpx.AsyncClient(base_url=base) as owner,
        httpx.AsyncClient(base_url=base) as member,
        httpx.AsyncClient(base_url=base) as outsider,
        httpx.AsyncClient(base_url=base) as anon,
    ):
        csrf = await login(owner, scene.owner)
        for c, user in ((member, scene.member), (outsider, scene.outsider)):
            await login(c, user)
        access_tokens.extend(await _access_tokens(database_url))

        def write_headers(token: str | None) -> dict[str, str]:
            return {"Content-Type": MERGE, **({"X-CSRF-Token": token} if token else {})}

        async def identities() -> tuple[bool, str]:
            got = {
                "none": (await anon.patch(settings, json={"prefix": "x"})).status_code,
                "member": (
                    await member.patch(settings, json={"prefix": "x"}, headers=write_headers("x"))
                ).status_code,
                "outsider": (await outsider.get(settings)).status_code,
                "no csrf": (
                    await owner.patch(settings, json={"prefix": "x"}, headers=write_headers(None))
                ).status_code,
            }
            want = {"none": 401, "member": 403, "outsider": 404, "no csrf": 403}
            return got == want, f"{got}"

        async def hostile() -> tuple[bool, str]:
            depth = 10_000
            deep = b'{"a":' * depth + b"1" + b"}" * depth
            got = {
                "nested 10k": (
                    await owner.patch(settings, content=deep, headers=write_headers(csrf))
                ).status_code,
                "1 MB body": (
                    await owner.patch(
                        settings,
                        content=b"{" + b" " * 1_000_000 + b"}",
                        headers=write_headers(csrf),
                    )
                ).status_code,
                "bad utf-8": (
                    await owner.patch(
                        settings, content=b'{"prefix":"\xff"}', headers=write_headers(csrf)
                    )
                ).status_code,
                "guild 2**64": (await owner.get(f"/api/guilds/{2**64}/settings")).status_code,
                "version 2**63": (
                    await owner.get(f"{settings}/history", params={"before_version": 2**63})
                ).status_code,
            }
            want = {
                "nested 10k": 422,
                "1 MB body": 413,
                "bad utf-8": 422,
                "guild 2**64": 404,
                "version 2**63": 422,
            }
            return got == want, f"{got}"

        async def escaping() -> tuple[bool, str]:
            script = "<script>alert(1)</script>"
            saved = await owner.patch(
                settings,
                json={
                    "welcome": {"message": script},
                    "custom_commands": [
                        {"name": "x", "response": "'; DROP TABLE guild_settings;--"}
                    ],
                },
                headers=write_headers(csrf),
            )
            pages = [f"/guilds/{scene.guild}{p}" for p in ("", "/welcome", "/commands", "/history")]
            raw = [p for p in pages if script in (await owner.get(p)).text]
            stored = (await owner.get(settings)).json()["settings"]["welcome"]["message"]
            return (
                saved.status_code == 200 and not raw and stored == script,
                f"saved {saved.status_code}; stored literally: {stored == script}; "
                f"unescaped on: {raw or 'no page'}",
            )

        async def flood() -> tuple[bool, str]:
            before = (await owner.get(settings)).json()["version"]
            t0 = time.monotonic()
            responses = await asyncio.gather(
                *(
                    owner.patch(settings, json={"prefix": f"f{i}"}, headers=write_headers(csrf))
                    for i in range(1000)
                ),
                return_exceptions=True,
            )
            elapsed = time.monotonic() - t0
            ok = [r for r in responses if isinstance(r, httpx.Response) and r.status_code == 200]
            limited = [
                r
                for r in responses
                if isinstance(r, httpx.Response)
                and r.status_code == 429
                and r.headers.get("retry-after")
            ]
            versions = sorted(int(r.json()["version"]) for r in ok)
            history = (await owner.get(f"{settings}/history", params={"limit": 200})).json()
            in_history = {h["version"] for h in history}
            final = (await owner.get(settings)).json()
            last = max(ok, key=lambda r: int(r.json()["version"])).json() if ok else None
            consistent = (
                versions == list(range(before + 1, before + 1 + len(ok)))
                and set(versions) <= in_history
                and last is not None
                and final["settings"] == last["settings"]
            )
            return (
                len(ok) + len(limited) == 1000
                # The defaults: bursts of 20, then 10 a second.
                and 20 <= len(ok) <= 20 + 10 * elapsed + 1
                and consistent,
                f"1000 PATCHes in {elapsed:.1f} s: {len(ok)} accepted, {len(limited)} got 429 "
                f"with Retry-After; versions contiguous and in history: {consistent}",
            )

        async def replay_after_logout() -> tuple[bool, str]:
            async with httpx.AsyncClient(base_url=base) as victim:
                token = await login(victim, scene.owner)
                cookie = victim.cookies.get(SESSION_COOKIE) or ""
                access_tokens.extend(await _access_tokens(database_url))
                await asyncio.sleep(1.1)  # the flood above emptied nothing of this session's
                async with httpx.AsyncClient(
                    base_url=other, cookies={SESSION_COOKIE: cookie}
                ) as elsewhere:
                    before = (await elsewhere.get("/api/session")).status_code
                await victim.post("/auth/logout", headers={"X-CSRF-Token": token})
            got: dict[str, int] = {"other process, before logout": before}
            for name, url in (("same process", base), ("other process", other)):
                async with httpx.AsyncClient(
                    base_url=url, cookies={SESSION_COOKIE: cookie}
                ) as thief:
                    got[f"{name}: session"] = (await thief.get("/api/session")).status_code
                    got[f"{name}: settings"] = (await thief.get(settings)).status_code
            want = {"other process, before logout": 200} | {
                k: 401 for k in got if k != "other process, before logout"
            }
            return got == want, f"{got}"

        async def public_surfaces() -> tuple[bool, str]:
            bodies = [
                (await anon.get(p)).text
                for p in ("/healthz", "/readyz", "/metrics", "/openapi.json")
            ]
            bodies.append((await anon.get("/auth/callback", params={"state": "é"})).text)
            everything = "\n".join(bodies)
            found = [t for t in access_tokens if t in everything]
            return not found, f"{len(bodies)} responses scanned; access tokens found: {len(found)}"

        await step("only the right identity gets through", identities)
        await step("hostile inputs are 4xx, never 5xx", hostile)
        await step("markup and SQL are stored literally and shown escaped", escaping)
        await step("a flood is rate limited, nothing lost or corrupted", flood)
        await step(
            "a cookie replayed after logout is refused by every dashboard process",
            replay_after_logout,
        )
        await step("health, metrics, spec and error pages carry no secret", public_surfaces)


def _write_report(path: Path, campaign: Campaign, seconds: float) -> None:
    lines = [
        "# Abuse campaign",
        "",
        "`python -m abuse`: two real `guildkit dashboard` processes (uvicorn) with the sandbox",
        "as Discord and a throwaway database; the fuller in-process campaign is `tests/abuse/`.",
        "",
        f"Result: **{'PASS' if campaign.passed else 'FAIL'}** in {seconds:.0f} s.",
        "",
        "| check | result | detail |",
        "|---|---|---|",
    ]
    for check in campaign.checks:
        detail = check.detail.replace("|", "\\|")
        lines.append(f"| {check.name} | {'pass' if check.ok else '**FAIL**'} | {detail} |")
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    report = Path(args[0]) if args else Path(__file__).resolve().parent / "report.md"
    ok = asyncio.run(run(report))
    print(f"report: {report}")
    return 0 if ok else 1
