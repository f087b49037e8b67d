"""Running the sandbox: in-process for tests (`run_sandbox`) and as a service (`serve`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from aiohttp import web

from guildkit.sandbox.app import create_app
from guildkit.sandbox.appkeys import HUB, STATE
from guildkit.sandbox.defaults import (
    API_PREFIX,
    DEFAULT_BOT_TOKEN,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    HEARTBEAT_INTERVAL_MS,
)
from guildkit.sandbox.demo import DemoIds, seed_demo
from guildkit.sandbox.gateway import GatewayHub
from guildkit.sandbox.state import SandboxState


@dataclass(frozen=True)
class RunningSandbox:
    base_url: str
    bot_token: str
    client_id: str
    client_secret: str
    app: web.Application

    @property
    def api_base(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return "ws" + self.base_url.removeprefix("http") + "/gateway"

    @property
    def state(self) -> SandboxState:
        return self.app[STATE]

    @property
    def hub(self) -> GatewayHub:
        return self.app[HUB]


@contextlib.asynccontextmanager
async def run_sandbox(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    bot_token: str = DEFAULT_BOT_TOKEN,
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str = DEFAULT_CLIENT_SECRET,
    heartbeat_interval_ms: int = HEARTBEAT_INTERVAL_MS,
) -> AsyncIterator[RunningSandbox]:
    """Serve the sandbox on `host:port` (0: any free port) for the duration of the block."""
    app = create_app(
        bot_token=bot_token,
        client_id=client_id,
        client_secret=client_secret,
        heartbeat_interval_ms=heartbeat_interval_ms,
    )
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    try:
        bound_port = runner.addresses[0][1]
        yield RunningSandbox(
            base_url=f"http://{host}:{bound_port}",
            bot_token=bot_token,
            client_id=client_id,
            client_secret=client_secret,
            app=app,
        )
    finally:
        await runner.cleanup()


def serve(
    host: str,
    port: int,
    bot_token: str,
    client_id: str,
    client_secret: str,
    seed_demo: bool,
    *,
    on_started: Callable[[RunningSandbox, DemoIds | None], None] | None = None,
) -> None:
    """Run until interrupted; `on_started` gets the URLs and the demo ids (for printing)."""

    async def _main() -> None:
        async with run_sandbox(
            host=host,
            port=port,
            bot_token=bot_token,
            client_id=client_id,
            client_secret=client_secret,
        ) as sandbox:
            demo = _seed(sandbox.state) if seed_demo else None
            if on_started is not None:
                on_started(sandbox, demo)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main())


def _seed(state: SandboxState) -> DemoIds:
    return seed_demo(state)
