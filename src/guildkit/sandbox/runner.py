"""Running the sandbox: in-process for tests (`run_sandbox`) and as a service (`serve`)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from aiohttp import web

from guildkit.sandbox import demo as demo_scene
from guildkit.sandbox.app import create_app
from guildkit.sandbox.appkeys import HUB, STATE
from guildkit.sandbox.defaults import (
    API_PREFIX,
    DEFAULT_BOT_TOKEN,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    HEARTBEAT_INTERVAL_MS,
)
from guildkit.sandbox.demo import DemoIds
from guildkit.sandbox.gateway import GatewayHub
from guildkit.sandbox.state import SandboxState


@dataclass(frozen=True)
class RunningSandbox:
    base_url: str
    bot_token: str
    client_id: str
    client_secret: str
    app: web.Application
    demo: DemoIds | None = None

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
    seed_demo: bool = False,
) -> AsyncIterator[RunningSandbox]:
    """Serve the sandbox on `host:port` (0: any free port) for the duration of the block.

    With `seed_demo`, the demo guild exists from the start and its ids are `sandbox.demo`.
    """
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
            demo=demo_scene.seed_demo(app[STATE]) if seed_demo else None,
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
            seed_demo=seed_demo,
        ) as sandbox:
            if on_started is not None:
                on_started(sandbox, sandbox.demo)
            stop = asyncio.Event()
            # SIGTERM is how `guildkit run` stops its children: shut down cleanly on it too.
            with contextlib.suppress(NotImplementedError):
                asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
            await stop.wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main())
