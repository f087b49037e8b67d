"""Typed keys for what the aiohttp application carries."""

from __future__ import annotations

from aiohttp import web

from guildkit.sandbox.gateway import GatewayHub
from guildkit.sandbox.state import SandboxState
from guildkit.sandbox.tokens import TokenStore

STATE = web.AppKey("state", SandboxState)
HUB = web.AppKey("hub", GatewayHub)
TOKENS = web.AppKey("tokens", TokenStore)
