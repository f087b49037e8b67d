"""A local stand-in for Discord (REST, gateway, OAuth2) for tests, demos and offline work.

Like moto for AWS: the real bot and dashboard talk to it over real HTTP and websockets, and a
control API under `/_sandbox/` lets tests set the scene and read back what the bot did.
"""

from guildkit.sandbox.defaults import (
    DEFAULT_BOT_TOKEN,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
)
from guildkit.sandbox.runner import RunningSandbox, run_sandbox, serve

__all__ = [
    "DEFAULT_BOT_TOKEN",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "RunningSandbox",
    "run_sandbox",
    "serve",
]
