"""Point discord.py at a Discord-compatible API base (the sandbox, or a REST proxy).

discord.py keeps two addresses as class attributes: `Route.BASE` for REST and
`DiscordWebSocket.DEFAULT_GATEWAY`, which a plain `Client` connects to first and which every
client falls back to after an invalid session. Both must move together.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

DISCORD_API_HOSTS = frozenset(
    {"discord.com", "discordapp.com", "canary.discord.com", "ptb.discord.com"}
)


@dataclass(frozen=True)
class DiscordEndpoints:
    api_base: str
    gateway: str


def current_endpoints() -> DiscordEndpoints:
    return DiscordEndpoints(api_base=Route.BASE, gateway=str(DiscordWebSocket.DEFAULT_GATEWAY))


def is_real_discord(api_base: str) -> bool:
    return (urlsplit(api_base).hostname or "") in DISCORD_API_HOSTS


def derive_gateway_url(api_base: str) -> str:
    """The sandbox convention: the gateway is `/gateway` on the API's host, ws(s) for http(s)."""
    parts = urlsplit(api_base)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}/gateway"


def point_discordpy_at(api_base: str, *, gateway_url: str | None = None) -> DiscordEndpoints:
    """Repoint discord.py's REST base and default gateway; returns the previous endpoints.

    For real Discord (discord.com) nothing changes: discord.py's own defaults are right there.
    Elsewhere the gateway is `gateway_url` if given, else derived from the API host (see
    `discover_gateway_url` for asking the server instead).
    """
    previous = current_endpoints()
    api_base = api_base.rstrip("/")
    if is_real_discord(api_base) and gateway_url is None:
        return previous
    Route.BASE = api_base
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url or derive_gateway_url(api_base))
    return previous


def restore_endpoints(endpoints: DiscordEndpoints) -> None:
    Route.BASE = endpoints.api_base
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(endpoints.gateway)


@contextlib.contextmanager
def discordpy_pointed_at(api_base: str, *, gateway_url: str | None = None) -> Iterator[None]:
    """`point_discordpy_at` for the duration of a block (tests), then the previous endpoints."""
    previous = point_discordpy_at(api_base, gateway_url=gateway_url)
    try:
        yield
    finally:
        restore_endpoints(previous)


async def discover_gateway_url(api_base: str, *, timeout: float = 5.0) -> str:  # noqa: ASYNC109 - an HTTP client timeout
    """Ask `GET {api_base}/gateway` (no auth needed), as Discord answers it."""
    async with httpx.AsyncClient(timeout=timeout) as client:
        response = await client.get(api_base.rstrip("/") + "/gateway")
        response.raise_for_status()
        return str(response.json()["url"])
