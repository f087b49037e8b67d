"""OAuth2 authorization code with PKCE, as the dashboard drives it."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlsplit

import httpx

from guildkit.sandbox import RunningSandbox
from guildkit.sandbox.client import SandboxClient
from guildkit.sandbox.permissions import ALL_PERMISSIONS

REDIRECT = "http://127.0.0.1:8080/auth/callback"


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def _authorize(
    client: httpx.AsyncClient, sandbox: RunningSandbox, user_id: int | None, challenge: str
) -> httpx.Response:
    params = {
        "client_id": sandbox.client_id,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "identify guilds",
        "state": "xyz",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if user_id is not None:
        params["sandbox_user"] = str(user_id)
    return await client.get(f"{sandbox.api_base}/oauth2/authorize", params=params)


async def _exchange(
    client: httpx.AsyncClient, sandbox: RunningSandbox, code: str, verifier: str, **overrides: str
) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
        "code_verifier": verifier,
    } | overrides
    return await client.post(f"{sandbox.api_base}/oauth2/token", data=form)


async def test_full_login_flow(sandbox: RunningSandbox, control: SandboxClient) -> None:
    demo = await control.seed_demo()
    verifier, challenge = _pkce()
    async with httpx.AsyncClient() as client:
        page = await _authorize(client, sandbox, None, challenge)
        assert page.status_code == 200 and "Log in as Demo Admin" in page.text
        redirect = await _authorize(client, sandbox, demo.admin_user_id, challenge)
        assert redirect.status_code == 302
        location = urlsplit(redirect.headers["location"])
        assert location._replace(query="").geturl() == REDIRECT
        query = parse_qs(location.query)
        assert query["state"] == ["xyz"]
        token = await _exchange(client, sandbox, query["code"][0], verifier)
        assert token.status_code == 200
        body = token.json()
        assert body["token_type"] == "Bearer" and body["scope"] == "identify guilds"
        assert {"access_token", "expires_in", "refresh_token"} <= set(body)
        headers = {"Authorization": f"Bearer {body['access_token']}"}
        me = (await client.get(f"{sandbox.api_base}/users/@me", headers=headers)).json()
        assert me["id"] == str(demo.admin_user_id)
        guilds = (await client.get(f"{sandbox.api_base}/users/@me/guilds", headers=headers)).json()
        assert guilds == [
            {
                "id": str(demo.guild_id),
                "name": "Guildkit Demo",
                "icon": None,
                "banner": None,
                "owner": True,
                "permissions": str(ALL_PERMISSIONS),
                "features": [],
                "approximate_member_count": 3,
                "approximate_presence_count": 0,
            }
        ]
        # Bearer tokens are not bot tokens.
        denied = await client.get(f"{sandbox.api_base}/guilds/{demo.guild_id}", headers=headers)
        assert denied.status_code == 401


async def test_member_sees_own_permissions(sandbox: RunningSandbox, control: SandboxClient) -> None:
    demo = await control.seed_demo()
    token = await control.issue_token(demo.member_user_id)
    async with httpx.AsyncClient() as client:
        headers = {"Authorization": f"Bearer {token}"}
        guilds = (await client.get(f"{sandbox.api_base}/users/@me/guilds", headers=headers)).json()
    assert guilds[0]["owner"] is False
    permissions = int(guilds[0]["permissions"])
    assert (
        permissions & 0x8 == 0 and permissions & 0x20 == 0
    )  # neither Administrator nor Manage Server


async def test_codes_are_single_use_and_pkce_checked(
    sandbox: RunningSandbox, control: SandboxClient
) -> None:
    user = await control.create_user("alice")
    verifier, challenge = _pkce()
    async with httpx.AsyncClient() as client:

        async def fresh_code() -> str:
            response = await _authorize(client, sandbox, user.id, challenge)
            return parse_qs(urlsplit(response.headers["location"]).query)["code"][0]

        bad_verifier = await _exchange(client, sandbox, await fresh_code(), "wrong-verifier")
        assert bad_verifier.status_code == 400 and bad_verifier.json()["error"] == "invalid_grant"
        bad_redirect = await _exchange(
            client, sandbox, await fresh_code(), verifier, redirect_uri="http://evil/"
        )
        assert bad_redirect.json()["error"] == "invalid_grant"
        bad_secret = await _exchange(
            client, sandbox, await fresh_code(), verifier, client_secret="nope"
        )
        assert bad_secret.status_code == 401 and bad_secret.json()["error"] == "invalid_client"
        code = await fresh_code()
        assert (await _exchange(client, sandbox, code, verifier)).status_code == 200
        reused = await _exchange(client, sandbox, code, verifier)
        assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"


async def test_authorize_rejects_unknown_client(sandbox: RunningSandbox) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"{sandbox.api_base}/oauth2/authorize",
            params={
                "client_id": "1",
                "redirect_uri": REDIRECT,
                "response_type": "code",
                "scope": "identify",
            },
        )
    assert response.status_code == 400
