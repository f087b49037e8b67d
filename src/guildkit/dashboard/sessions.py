"""Signed session cookies (itsdangerous). The cookie carries the session; nothing is stored here.

The signature and its timestamp stop forgery and bound the session's life; `expires_at` inside
additionally caps it at the Discord token's own expiry.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any, Final

from itsdangerous import BadSignature, URLSafeTimedSerializer

SESSION_COOKIE: Final = "guildkit_session"
LOGIN_COOKIE: Final = "guildkit_login"
LOGIN_MAX_AGE: Final = 600


@dataclass(frozen=True, slots=True)
class Session:
    user_id: str
    username: str
    display_name: str
    avatar: str | None
    access_token: str
    csrf_token: str
    expires_at: int

    @property
    def actor(self) -> str:
        # The id is the stable part; the name only helps a human reading the history.
        return f"discord:{self.user_id} ({self.username})"

    def to_public(self) -> dict[str, Any]:
        return {
            "user": {
                "id": self.user_id,
                "username": self.username,
                "display_name": self.display_name,
                "avatar": self.avatar,
            },
            "csrf_token": self.csrf_token,
            "expires_at": self.expires_at,
        }


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """What the login redirect must remember until the callback: state, PKCE verifier, target."""

    state: str
    code_verifier: str
    next_path: str


class SessionCodec:
    def __init__(self, secret_key: str, *, max_age_seconds: int = 8 * 3600) -> None:
        self.max_age = max_age_seconds
        self._sessions = URLSafeTimedSerializer(secret_key, salt="guildkit.dashboard.session")
        self._logins = URLSafeTimedSerializer(secret_key, salt="guildkit.dashboard.login")
        # Logged-out sessions (by CSRF token, unique per login) until they would expire anyway.
        # Per process: elsewhere a replayed cookie still fails wherever Discord is asked, since
        # logout revokes the Discord token; here it fails everywhere, /api/session included.
        self._ended: dict[str, int] = {}

    def new_session(
        self,
        *,
        user_id: str,
        username: str,
        display_name: str,
        avatar: str | None,
        access_token: str,
        token_expires_in: int,
        now: float | None = None,
    ) -> Session:
        issued = time.time() if now is None else now
        return Session(
            user_id=user_id,
            username=username,
            display_name=display_name,
            avatar=avatar,
            access_token=access_token,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=int(issued + min(self.max_age, max(token_expires_in, 0))),
        )

    def encode(self, session: Session) -> str:
        return self._sessions.dumps(asdict(session))

    def decode(self, cookie: str | None, *, now: float | None = None) -> Session | None:
        """The session in a cookie, or None if it is missing, forged, malformed or expired."""
        if not cookie:
            return None
        try:
            data = self._sessions.loads(cookie, max_age=self.max_age)
            session = Session(**data)
        except (BadSignature, TypeError, ValueError):
            return None
        if session.expires_at <= (time.time() if now is None else now):
            return None
        if session.csrf_token in self._ended:
            return None
        return session

    def end(self, session: Session, *, now: float | None = None) -> None:
        """Refuse this session's cookie from now on (logout), in this process."""
        current = time.time() if now is None else now
        self._ended = {t: exp for t, exp in self._ended.items() if exp > current}
        self._ended[session.csrf_token] = session.expires_at

    def encode_login(self, attempt: LoginAttempt) -> str:
        return self._logins.dumps(asdict(attempt))

    def decode_login(self, cookie: str | None) -> LoginAttempt | None:
        if not cookie:
            return None
        try:
            return LoginAttempt(**self._logins.loads(cookie, max_age=LOGIN_MAX_AGE))
        except (BadSignature, TypeError, ValueError):
            return None
