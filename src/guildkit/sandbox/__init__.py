"""A local stand-in for Discord (REST, gateway, OAuth2) for tests, demos and offline work.

Like moto for AWS: the real bot and dashboard talk to it over real HTTP and websockets, and a
control API under `/_sandbox/` lets tests set the scene and read back what the bot did::

    async with run_sandbox(seed_demo=True) as sandbox:          # port 0: a free port
        point_discordpy_at(sandbox.api_base)                   # guildkit.sandbox.discordpy
        async with SandboxClient(sandbox.base_url) as control:
            await control.post_message(sandbox.demo.general_channel_id,
                                       sandbox.demo.member_user_id, "!ping")
            await control.wait_for_message(sandbox.demo.general_channel_id,
                                           lambda m: "pong" in m.content)
"""

from guildkit.sandbox.client import SandboxClient
from guildkit.sandbox.defaults import (
    DEFAULT_BOT_TOKEN,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
)
from guildkit.sandbox.demo import DemoIds
from guildkit.sandbox.runner import RunningSandbox, run_sandbox, serve

__all__ = [
    "DEFAULT_BOT_TOKEN",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DemoIds",
    "RunningSandbox",
    "SandboxClient",
    "run_sandbox",
    "serve",
]
