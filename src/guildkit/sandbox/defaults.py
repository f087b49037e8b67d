"""Fixed development credentials, used whenever DISCORD_TOKEN & co. are unset."""

from __future__ import annotations

DEFAULT_BOT_TOKEN = "sandbox-bot-token"
DEFAULT_CLIENT_ID = "100000000000000001"
DEFAULT_CLIENT_SECRET = "sandbox-secret"
API_PREFIX = "/api/v10"
# Discord's real value; discord.py heartbeats at this interval, so it never matters for speed.
HEARTBEAT_INTERVAL_MS = 41250
