"""Headless Chromium (Debian's, through Playwright) against a real uvicorn-served dashboard."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import Browser, Page, async_playwright, expect

from guildkit.dashboard.composition import find_htmx
from guildkit.dashboard.context import DashboardOptions
from guildkit.sandbox.client import SandboxClient
from guildkit.sandbox.runner import RunningSandbox
from tests.bot.harness import ChildFactory, answered_within, bot_env, start_bot
from tests.dashboard.conftest import Scene, build, free_port
from tests.support.postgres_server import PostgresServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is missing"),
]
SCREENSHOTS = Path(tempfile.gettempdir()) / "guildkit-dashboard-screenshots"
SCREENSHOTS.mkdir(exist_ok=True)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@contextlib.asynccontextmanager
async def served(database_url: str, sandbox: RunningSandbox) -> AsyncIterator[str]:
    """The dashboard on `database_url` under a real uvicorn server in this process."""
    built = build(database_url, sandbox, options=DashboardOptions(htmx_path=find_htmx()))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(built.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.02)
    else:
        raise RuntimeError("uvicorn did not start within 10 s")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        await built.close()


@pytest.fixture
async def dashboard_url(database_url: str, sandbox: RunningSandbox) -> AsyncIterator[str]:
    async with served(database_url, sandbox) as url:
        yield url


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        launched = await p.chromium.launch(
            executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


async def logged_in_page(browser: Browser, base: str, username: str) -> Page:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(base + "/")
    await page.get_by_role("link", name="Log in with Discord").click()
    # The sandbox's stand-in for Discord's consent screen.
    await page.get_by_role("link", name=re.compile(f"Log in as .*{username}", re.I)).click()
    await expect(page.get_by_role("heading", name="Your servers")).to_be_visible()
    return page


async def test_login_change_prefix_and_see_it_saved(
    browser: Browser, dashboard_url: str, scene: Scene
) -> None:
    page = await logged_in_page(browser, dashboard_url, "Olive Owner")
    await page.get_by_role("link", name="Configure").first.click()
    await expect(page.get_by_role("heading", name="Test <Guild>")).to_be_visible()
    await page.get_by_label("Command prefix").fill("?")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_text("Saved as version 1")).to_be_visible()
    # The sync line replaces itself once htmx has polled /sync-status (or stays a link without).
    if find_htmx() is not None:
        await expect(
            page.get_by_text(re.compile(r"No bot process is running|Live on \d+ of \d+"))
        ).to_be_visible()
        await expect(page.get_by_text("Settings version 1")).to_be_visible()
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.screenshot(path=str(SCREENSHOTS / "general-saved-phone.png"), full_page=True)
    await page.reload()
    await expect(page.get_by_label("Command prefix")).to_have_value("?")
    await expect(page.get_by_text("Settings version 1")).to_be_visible()


async def test_revert_from_history(browser: Browser, dashboard_url: str, scene: Scene) -> None:
    page = await logged_in_page(browser, dashboard_url, "Olive Owner")
    await page.goto(f"{dashboard_url}/guilds/{scene.guild}")
    for prefix in ("a", "b"):
        await page.get_by_label("Command prefix").fill(prefix)
        await page.get_by_role("button", name="Save").click()
        await expect(page.get_by_text(re.compile("Saved as version"))).to_be_visible()
        await page.goto(f"{dashboard_url}/guilds/{scene.guild}")
    await page.get_by_role("link", name="History").click()
    entry = page.locator("li.card", has_text="Version 1")
    await entry.get_by_role("button", name="Revert to this").click()
    await expect(page.get_by_text("saved as version 3")).to_be_visible()
    await page.screenshot(path=str(SCREENSHOTS / "history.png"), full_page=True)
    await page.goto(f"{dashboard_url}/guilds/{scene.guild}")
    await expect(page.get_by_label("Command prefix")).to_have_value("a")


async def test_conflict_between_two_sessions_keeps_input(
    browser: Browser, dashboard_url: str, scene: Scene
) -> None:
    first = await logged_in_page(browser, dashboard_url, "Olive Owner")
    second = await logged_in_page(browser, dashboard_url, "admin")
    for page in (first, second):
        await page.goto(f"{dashboard_url}/guilds/{scene.guild}")
    await first.get_by_label("Command prefix").fill("1")
    await first.get_by_role("button", name="Save").click()
    await expect(first.get_by_text("Saved as version 1")).to_be_visible()

    await second.get_by_label("Command prefix").fill("2")
    await second.get_by_role("button", name="Save").click()
    await expect(second.get_by_text("Someone saved first")).to_be_visible()
    await second.screenshot(path=str(SCREENSHOTS / "conflict.png"), full_page=True)
    await expect(second.get_by_label("Command prefix")).to_have_value("2")
    await second.get_by_role("button", name="Save").click()
    await expect(second.get_by_text("Saved as version 2")).to_be_visible()
    await first.goto(f"{dashboard_url}/guilds/{scene.guild}")
    await expect(first.get_by_label("Command prefix")).to_have_value("2")


async def test_a_prefix_saved_in_the_browser_is_answered_by_the_real_bot(
    browser: Browser,
    postgres_server: PostgresServer,
    python_child: ChildFactory,
    sandbox: RunningSandbox,
    sb: SandboxClient,
    scene: Scene,
) -> None:
    """The whole loop as an admin sees it: log in through the stand-in, change the prefix,
    see it saved and then live on the one bot process, and the real `guildkit bot` process
    answers the new prefix in the stand-in (and no longer the old one)."""
    # A private PostgreSQL, so the only bot process the dashboard counts is this test's.
    database_url = postgres_server.url_for("guildkit")
    await start_bot(python_child, bot_env(sandbox, database_url))
    member, channel = scene.member, scene.text_channel
    assert "pong" in (await answered_within(sb, channel, member, "!ping", within=5.0)).content
    async with served(database_url, sandbox) as url:
        page = await logged_in_page(browser, url, "Olive Owner")
        await page.goto(f"{url}/guilds/{scene.guild}")
        await page.get_by_label("Command prefix").fill("?")
        await page.get_by_role("button", name="Save").click()
        await expect(page.get_by_text("Saved as version 1")).to_be_visible()
        if find_htmx() is None:
            # Without htmx the save shows a link to the same status instead of polling it.
            await page.get_by_role("link", name="Is it live on every bot process?").click()
        await expect(page.get_by_text("Live on 1 of 1 bot processes.")).to_be_visible(timeout=5000)
    reply = await answered_within(sb, channel, member, "?ping", within=5.0)
    assert "pong" in reply.content
    ignored = await sb.post_message(channel, member, "!ping")
    later = await sb.post_message(channel, member, "?ping")
    await sb.wait_for_message(channel, lambda m: m.reference_id == later.id)
    assert not [m for m in await sb.sent_messages(channel) if m.reference_id == ignored.id]
