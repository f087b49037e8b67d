"""The sandbox chat page in headless Chromium: type a message, see the bot's answer appear."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from guildkit.sandbox.runner import run_sandbox
from tests.run.system import RunningSystem, has_bot_and_dashboard

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def _say(page: Page, text: str) -> None:
    await page.get_by_label("Message").fill(text)
    await page.get_by_role("button", name="Send").click()


async def test_the_page_shows_a_reply_the_moment_the_bot_sends_it(browser: Browser) -> None:
    # No bot here: the test answers for it, through the same state the real bot's REST calls
    # change. The real bot is in the test below.
    async with run_sandbox(seed_demo=True) as sandbox:
        demo = sandbox.demo
        assert demo is not None
        state = sandbox.state
        page = await browser.new_page()
        await page.goto(f"{sandbox.base_url}/chat")
        await expect(page.locator("#status")).to_have_text("live")
        await expect(page.get_by_role("button", name="# general")).to_have_attribute(
            "aria-current", "true"
        )
        await _say(page, "!ping")
        async with asyncio.timeout(10):
            while not any(m.content == "!ping" for m in state.messages.values()):
                await state.wait_for_change(state.version, 1.0)
        asked = next(m for m in state.messages.values() if m.content == "!ping")
        assert asked.author_id == demo.member_user_id, "typed as the demo member"
        state.post_message(demo.general_channel_id, state.bot_user.id, "pong from the test")
        await expect(page.locator(".msg.bot .text")).to_have_text("pong from the test")
        # A moderation deletion shows up struck through, with who deleted it.
        state.delete_message(
            demo.general_channel_id, asked.id, actor_id=state.bot_user.id, record=True
        )
        await expect(page.locator(".msg.deleted .text")).to_have_text("!ping")
        await expect(page.locator("#events")).to_contain_text("message deleted")
        # The join button adds a member, listed live.
        await page.get_by_role("button", name="Simulate a member joining").click()
        await expect(page.locator("#members")).to_contain_text("Newcomer")


@pytest.mark.skipif(
    not has_bot_and_dashboard(), reason="`guildkit bot` and `guildkit dashboard` not merged yet"
)
@pytest.mark.timeout(400)
async def test_the_real_bot_answers_a_message_typed_into_the_page(
    browser: Browser, data_dir: Path, tmp_path: Path
) -> None:
    system = RunningSystem(data_dir)
    try:
        await asyncio.to_thread(system.wait_running)
        page = await browser.new_page()
        await page.goto(f"{system.sandbox_url}/chat")
        await expect(page.locator("#status")).to_have_text("live")
        await _say(page, "!ping")
        await expect(page.locator(".msg.bot .text").first).to_contain_text("pong", timeout=30_000)
        # Kept with pytest's retained temporary directories, for a person to look at.
        await page.screenshot(path=str(tmp_path / "chat.png"))
        assert await asyncio.to_thread(system.stop) == 0
    finally:
        system.close()
