"""The aiohttp application: REST under /api/v10, the gateway, OAuth2 and the control API."""

from __future__ import annotations

from aiohttp import web

from guildkit.sandbox import control, oauth2
from guildkit.sandbox.appkeys import HUB, STATE, TOKENS
from guildkit.sandbox.defaults import API_PREFIX, HEARTBEAT_INTERVAL_MS
from guildkit.sandbox.gateway import GatewayHub
from guildkit.sandbox.rest import channels, guilds, users
from guildkit.sandbox.rest.common import discord_errors, rate_limit_headers
from guildkit.sandbox.state import SandboxState
from guildkit.sandbox.tokens import TokenStore


def create_app(
    *,
    bot_token: str,
    client_id: str,
    client_secret: str,
    heartbeat_interval_ms: int = HEARTBEAT_INTERVAL_MS,
) -> web.Application:
    state = SandboxState(bot_token=bot_token, client_id=client_id, client_secret=client_secret)
    hub = GatewayHub(state, heartbeat_interval_ms=heartbeat_interval_ms)
    app = web.Application(middlewares=[rate_limit_headers, discord_errors])
    app[STATE] = state
    app[HUB] = hub
    app[TOKENS] = TokenStore()

    for table in (users.routes, guilds.routes, channels.routes, oauth2.routes):
        for route in table:
            assert isinstance(route, web.RouteDef)
            app.router.add_route(
                route.method, API_PREFIX + route.path, route.handler, **route.kwargs
            )

    # discord.py's DEFAULT_GATEWAY ends with a slash; resume_gateway_url does not.
    app.router.add_get("/gateway", hub.handle)
    app.router.add_get("/gateway/", hub.handle)
    app.add_routes(control.routes)

    async def _drop_sockets(_: web.Application) -> None:
        hub.cut(invalidate_sessions=True)

    app.on_shutdown.append(_drop_sockets)
    return app
