"""A `guildkit run` under test: start it as a child process and talk to what it started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from guildkit.cli.main import app
from tests.run.support import clean_env, wait_until
from tests.support.processes import ChildProcess

BOOT_SECONDS = 180.0


def has_bot_and_dashboard() -> bool:
    names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    return {"bot", "dashboard"} <= names


@dataclass(frozen=True)
class Demo:
    guild_id: str
    channel_id: str
    member_id: str
    bot_id: str


class RunningSystem:
    def __init__(self, data_dir: Path, **env: str) -> None:
        self.data_dir = data_dir
        self.env = clean_env(data_dir, **env)
        self.sandbox_url = f"http://127.0.0.1:{self.env['GUILDKIT_SANDBOX_PORT']}"
        self.dashboard_url = f"http://127.0.0.1:{self.env['GUILDKIT_PORT']}"
        self.process = self.spawn()
        self.http = httpx.Client(timeout=10)

    def spawn(self) -> ChildProcess:
        # cwd outside the repository, so no developer's .env is read.
        return ChildProcess(
            [sys.executable, "-m", "guildkit.cli.main", "run"],
            env=self.env,
            inherit_env=False,
            cwd=self.data_dir.parent,
        )

    def wait_running(self, within: float = BOOT_SECONDS) -> dict[str, Any]:
        line = self.process.wait_for_line("guildkit is running", timeout=within)
        summary: dict[str, Any] = json.loads(line)
        return summary

    def child_pid(self, name: str, start: int | None = None) -> int | None:
        """The pid the supervisor last reported for child `name` (optionally its n-th start)."""
        pid = None
        for line in self.process.output:
            if f'"started {name}"' not in line:
                continue
            event = json.loads(line)
            if start is None or event.get("start") == start:
                pid = int(event["pid"])
        return pid

    def guildkit(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "guildkit.cli.main", *args],
            env=self.env,
            cwd=self.data_dir.parent,
            capture_output=True,
            text=True,
            timeout=120,
            check=check,
        )

    def demo(self) -> Demo:
        state = self.http.get(f"{self.sandbox_url}/chat/api/state").json()
        guild = next(g for g in state["guilds"] if g["name"] == "Guildkit Demo")
        general = next(c for c in guild["channels"] if c["name"] == "general")
        member = next(m for m in guild["members"] if m["name"] == "Demo Member")
        return Demo(guild["id"], general["id"], member["id"], state["bot_user_id"])

    def post(self, demo: Demo, content: str) -> str:
        response = self.http.post(
            f"{self.sandbox_url}/_sandbox/channels/{demo.channel_id}/messages",
            json={"author_id": demo.member_id, "content": content},
        )
        response.raise_for_status()
        message_id: str = response.json()["id"]
        return message_id

    def bot_replies_after(self, demo: Demo, message_id: str) -> list[str]:
        messages = self.http.get(
            f"{self.sandbox_url}/_sandbox/channels/{demo.channel_id}/messages",
            params={"author_id": demo.bot_id},
        ).json()
        return [m["content"] for m in messages if int(m["id"]) > int(message_id)]

    def ping_until_pong(self, demo: Demo, command: str, within: float) -> float:
        """Send `command` until the bot answers with pong; the seconds it took."""
        began = time.monotonic()

        def answered() -> bool:
            sent = self.post(demo, command)
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                if any("pong" in reply.lower() for reply in self.bot_replies_after(demo, sent)):
                    return True
                time.sleep(0.05)
            return False

        wait_until(answered, within, f"a pong to {command!r}", step=0)
        return time.monotonic() - began

    def dashboard_session(self, demo: Demo) -> tuple[httpx.Client, str]:
        """Log in to the dashboard as the demo guild's owner through the stand-in's OAuth2
        consent page (a query parameter picks the user); returns the client and CSRF token."""
        owner = next(
            m["id"]
            for g in self.http.get(f"{self.sandbox_url}/chat/api/state").json()["guilds"]
            if g["id"] == demo.guild_id
            for m in g["members"]
            if m["owner"]
        )
        client = httpx.Client(timeout=10)
        to_discord = client.get(f"{self.dashboard_url}/auth/login")
        assert to_discord.status_code in (302, 303, 307), to_discord.text
        back = client.get(f"{to_discord.headers['location']}&sandbox_user={owner}")
        assert back.status_code in (302, 303, 307), back.text
        done = client.get(back.headers["location"])
        assert done.status_code < 400, done.text
        session = client.get(f"{self.dashboard_url}/api/session").json()
        return client, str(session["csrf_token"])

    def stop(self, sig: signal.Signals = signal.SIGTERM, within: float = 60.0) -> int:
        """Send `sig` to `guildkit run` alone (as a terminal's Ctrl-C or a service manager
        would) and return its exit status."""
        if sig is signal.SIGTERM:
            return self.process.terminate(timeout=within)
        os.kill(self.process.pid, sig)
        wait_until(lambda: not self.process.alive(), within, f"guildkit run to stop on {sig.name}")
        code = self.process.returncode
        assert code is not None
        return code

    def close(self) -> None:
        self.http.close()
        if self.process.alive():
            self.process.kill()
