"""The dashboard's Discord REST client (httpx). Every URL derives from DISCORD_API_BASE.

Users' calls (their identity and guild list) use their OAuth2 bearer token; guild lookups
(channels, roles, which guilds the bot is in) use the bot token. Results are cached briefly:
Discord rate-limits these routes and a settings page asks for them on every render.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx

from guildkit.dashboard.ttl_cache import TtlCache

log = logging.getLogger(__name__)

OAUTH_SCOPES: Final = "identify guilds"
USER_AGENT: Final = "DiscordBot (https://github.com/guildkit/guildkit, 0.1) guildkit-dashboard"
# Channel types whose messages the bot can post to: GUILD_TEXT and GUILD_ANNOUNCEMENT.
TEXT_CHANNEL_TYPES: Final = frozenset({0, 5})
MAX_RETRY_AFTER_SECONDS: Final = 2.0


class DiscordError(Exception):
    """Base of the errors this client raises."""


class DiscordUnavailable(DiscordError):
    """Discord could not be reached, timed out, rate-limited us or failed (5xx)."""


class DiscordAuthError(DiscordError):
    """Discord refused a user's token or an OAuth2 code (the user must log in again)."""


class DiscordNotFound(DiscordError):
    """The bot cannot see this guild (not a member, or the guild does not exist)."""


@dataclass(frozen=True, slots=True)
class TokenGrant:
    access_token: str
    expires_in: int
    scope: str


@dataclass(frozen=True, slots=True)
class DiscordUser:
    id: str
    username: str
    global_name: str | None
    avatar: str | None

    @property
    def display_name(self) -> str:
        return self.global_name or self.username


@dataclass(frozen=True, slots=True)
class UserGuild:
    id: str
    name: str
    icon: str | None
    owner: bool
    permissions: int


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    name: str
    type: int
    position: int

    @property
    def is_text(self) -> bool:
        return self.type in TEXT_CHANNEL_TYPES


@dataclass(frozen=True, slots=True)
class Role:
    id: str
    name: str
    position: int
    managed: bool


def web_base(api_base: str) -> str:
    """The site root of an API base: `https://discord.com/api/v10` → `https://discord.com`."""
    parts = urlsplit(api_base)
    path = re.sub(r"/api(/v\d+)?/?$", "", parts.path)
    return urlunsplit((parts.scheme, parts.netloc, path, "", "")).rstrip("/")


class DiscordClient:
    def __init__(
        self,
        api_base: str,
        *,
        client_id: str | None,
        client_secret: str | None,
        bot_token: str | None,
        http: httpx.AsyncClient | None = None,
        user_cache_seconds: float = 15.0,
        guild_cache_seconds: float = 30.0,
    ) -> None:
        self.api_base = api_base.rstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self._bot_token = bot_token
        self._http = http or httpx.AsyncClient(
            timeout=httpx.Timeout(5.0), headers={"User-Agent": USER_AGENT}
        )
        self._user_guilds: TtlCache[str, list[UserGuild]] = TtlCache(user_cache_seconds)
        self._bot_guilds: TtlCache[str, frozenset[str]] = TtlCache(guild_cache_seconds)
        self._channels: TtlCache[str, list[Channel]] = TtlCache(guild_cache_seconds)
        self._roles: TtlCache[str, list[Role]] = TtlCache(guild_cache_seconds)

    @property
    def has_bot_token(self) -> bool:
        return bool(self._bot_token)

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- OAuth2 -----------------------------------------------------------------------------

    def authorize_url(self, *, state: str, code_challenge: str, redirect_uri: str) -> str:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id or "",
                "scope": OAUTH_SCOPES,
                "state": state,
                "redirect_uri": redirect_uri,
                "code_challenge": code_challenge,
                "code_challenge_method": "S256",
            }
        )
        return f"{self.api_base}/oauth2/authorize?{query}"

    def invite_url(self, guild_id: str | None = None, *, permissions: int = 0) -> str | None:
        """Where an admin adds the bot to a server (Discord's site, or the stand-in's)."""
        if not self.client_id:
            return None
        params = {"client_id": self.client_id, "scope": "bot", "permissions": str(permissions)}
        if guild_id:
            params |= {"guild_id": guild_id, "disable_guild_select": "true"}
        return f"{web_base(self.api_base)}/oauth2/authorize?{urlencode(params)}"

    async def exchange_code(
        self, *, code: str, code_verifier: str, redirect_uri: str
    ) -> TokenGrant:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
            "client_id": self.client_id or "",
        }
        if self._client_secret:
            data["client_secret"] = self._client_secret
        response = await self._send("POST", "/oauth2/token", data=data)
        if response.status_code in (400, 401):
            raise DiscordAuthError(f"Discord refused the login code: {_error_text(response)}")
        body = self._json(response)
        try:
            return TokenGrant(
                access_token=str(body["access_token"]),
                expires_in=int(body.get("expires_in", 604800)),
                scope=str(body.get("scope", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DiscordUnavailable("Discord sent a malformed token response") from exc

    async def revoke(self, access_token: str) -> None:
        """Best effort: after logout the token (and so any copy of the cookie) stops working."""
        self._user_guilds.invalidate(_token_key(access_token))
        data = {"token": access_token, "token_type_hint": "access_token"}
        data["client_id"] = self.client_id or ""
        if self._client_secret:
            data["client_secret"] = self._client_secret
        try:
            await self._send("POST", "/oauth2/token/revoke", data=data)
        except DiscordError as exc:
            log.warning("could not revoke a Discord token at logout: %s", exc)

    # --- the user's view (bearer token) -----------------------------------------------------

    async def current_user(self, access_token: str) -> DiscordUser:
        body = self._json(await self._bearer("GET", "/users/@me", access_token))
        return DiscordUser(
            id=str(body["id"]),
            username=str(body.get("username", "")),
            global_name=body.get("global_name"),
            avatar=body.get("avatar"),
        )

    async def user_guilds(
        self, access_token: str, *, max_age: float | None = None
    ) -> list[UserGuild]:
        """The guilds the user is in, with their permissions there (cached briefly per token)."""
        key = _token_key(access_token)

        async def load() -> list[UserGuild]:
            response = await self._bearer("GET", "/users/@me/guilds", access_token)
            return [_user_guild(g) for g in self._json(response)]

        return await self._user_guilds.get(key, load, max_age=max_age)

    # --- the bot's view (bot token) ---------------------------------------------------------

    async def bot_guild_ids(self) -> frozenset[str]:
        """Every guild the bot is in (paginated; cached)."""
        if not self._bot_token:
            return frozenset()

        async def load() -> frozenset[str]:
            ids: list[str] = []
            after = "0"
            while True:
                response = await self._bot("GET", f"/users/@me/guilds?limit=200&after={after}")
                page = self._json(response)
                ids.extend(str(g["id"]) for g in page)
                if len(page) < 200:
                    return frozenset(ids)
                after = str(page[-1]["id"])

        return await self._bot_guilds.get("bot", load)

    async def guild_channels(self, guild_id: str) -> list[Channel]:
        async def load() -> list[Channel]:
            response = await self._bot("GET", f"/guilds/{guild_id}/channels")
            channels = [
                Channel(
                    id=str(c["id"]),
                    name=str(c.get("name", "")),
                    type=int(c.get("type", 0)),
                    position=int(c.get("position", 0)),
                )
                for c in self._json(response)
            ]
            return sorted(channels, key=lambda c: (c.position, c.name))

        return await self._channels.get(guild_id, load)

    async def guild_roles(self, guild_id: str) -> list[Role]:
        async def load() -> list[Role]:
            response = await self._bot("GET", f"/guilds/{guild_id}/roles")
            roles = [
                Role(
                    id=str(r["id"]),
                    name=str(r.get("name", "")),
                    position=int(r.get("position", 0)),
                    managed=bool(r.get("managed", False)),
                )
                for r in self._json(response)
            ]
            return sorted(roles, key=lambda r: -r.position)

        return await self._roles.get(guild_id, load)

    def forget_guild(self, guild_id: str) -> None:
        self._channels.invalidate(guild_id)
        self._roles.invalidate(guild_id)

    # --- transport ----------------------------------------------------------------------------

    async def _bearer(self, method: str, path: str, access_token: str) -> httpx.Response:
        response = await self._send(
            method, path, headers={"Authorization": f"Bearer {access_token}"}
        )
        if response.status_code == 401:
            raise DiscordAuthError("Discord no longer accepts this login; log in again")
        return response

    async def _bot(self, method: str, path: str) -> httpx.Response:
        if not self._bot_token:
            raise DiscordUnavailable("DISCORD_TOKEN is not set, so guilds cannot be looked up")
        response = await self._send(
            method, path, headers={"Authorization": f"Bot {self._bot_token}"}
        )
        if response.status_code in (403, 404):
            raise DiscordNotFound(f"the bot cannot see {path}")
        if response.status_code == 401:
            raise DiscordUnavailable("Discord refused the bot token (check DISCORD_TOKEN)")
        return response

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await self._request(method, path, **kwargs)
        if response.status_code == 429:
            # One short wait is cheaper for the admin than an error; a long one is not.
            delay = _retry_after(response)
            if delay is not None and delay <= MAX_RETRY_AFTER_SECONDS:
                await asyncio.sleep(delay)
                response = await self._request(method, path, **kwargs)
        if response.status_code == 429:
            raise DiscordUnavailable("Discord is rate-limiting the dashboard; try again shortly")
        if response.status_code >= 500:
            raise DiscordUnavailable(f"Discord answered {response.status_code} for {path}")
        return response

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, f"{self.api_base}{path}", **kwargs)
        except httpx.HTTPError as exc:
            raise DiscordUnavailable(f"cannot reach Discord at {self.api_base}: {exc!r}") from exc

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise DiscordUnavailable(
                f"Discord answered {response.status_code}: {_error_text(response)}"
            )
        try:
            return response.json()
        except ValueError as exc:
            raise DiscordUnavailable("Discord sent a response that is not JSON") from exc


def _retry_after(response: httpx.Response) -> float | None:
    try:
        body = response.json()
        if isinstance(body, dict) and "retry_after" in body:
            return float(body["retry_after"])
        return float(response.headers["retry-after"])
    except (KeyError, TypeError, ValueError):
        return None


def _token_key(access_token: str) -> str:
    # Cache keys never hold the token itself.
    return hashlib.sha256(access_token.encode()).hexdigest()


def _user_guild(raw: dict[str, Any]) -> UserGuild:
    try:
        permissions = int(raw.get("permissions", 0))
    except (TypeError, ValueError):
        permissions = 0
    return UserGuild(
        id=str(raw["id"]),
        name=str(raw.get("name", "")),
        icon=raw.get("icon"),
        owner=bool(raw.get("owner", False)),
        permissions=permissions,
    )


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("error_description") or body.get("message") or body.get("error"))
    return str(body)[:200]
