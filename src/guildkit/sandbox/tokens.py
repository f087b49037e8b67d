"""OAuth2 authorization codes and bearer tokens, kept in memory."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass

CODE_LIFETIME_SECONDS = 600.0
TOKEN_LIFETIME_SECONDS = 604800


@dataclass(frozen=True)
class Grant:
    user_id: int
    client_id: str
    redirect_uri: str
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float


@dataclass(frozen=True)
class AccessToken:
    user_id: int
    scope: str
    expires_at: float

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.scope.split())


def pkce_matches(verifier: str, challenge: str, method: str | None) -> bool:
    if method in (None, "plain"):
        return secrets.compare_digest(verifier, challenge)
    if method != "S256":
        return False
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return secrets.compare_digest(computed, challenge)


class TokenStore:
    def __init__(self) -> None:
        self.codes: dict[str, Grant] = {}
        self.access: dict[str, AccessToken] = {}
        self.refresh: dict[str, AccessToken] = {}

    def reset(self) -> None:
        self.codes.clear()
        self.access.clear()
        self.refresh.clear()

    def issue_code(self, grant: Grant) -> str:
        code = secrets.token_urlsafe(24)
        self.codes[code] = grant
        return code

    def take_code(self, code: str) -> Grant | None:
        """Codes are single-use: taking one removes it whether or not the exchange succeeds."""
        grant = self.codes.pop(code, None)
        if grant is None or grant.expires_at < time.monotonic():
            return None
        return grant

    def issue_tokens(self, user_id: int, scope: str) -> tuple[str, str, AccessToken]:
        token = AccessToken(
            user_id=user_id, scope=scope, expires_at=time.time() + TOKEN_LIFETIME_SECONDS
        )
        access = secrets.token_urlsafe(30)
        refresh = secrets.token_urlsafe(30)
        self.access[access] = token
        self.refresh[refresh] = token
        return access, refresh, token

    def lookup(self, access_token: str) -> AccessToken | None:
        token = self.access.get(access_token)
        if token is None or token.expires_at < time.time():
            return None
        return token

    def revoke(self, token: str) -> None:
        self.access.pop(token, None)
        self.refresh.pop(token, None)
