"""Dashboard sessions, kept in PostgreSQL; the cookie carries only a signed random secret.

- The cookie: a random 256-bit secret, signed with a timestamp (itsdangerous, keyed by
  GUILDKIT_SECRET_KEY), so a forged, altered or stale cookie is refused without a query.
- The row (`dashboard_sessions`): keyed by the secret's sha256, so reading the table yields no
  usable cookie. It holds the user, the CSRF token and the Discord access token, the latter
  encrypted (AES-GCM) with a key derived from the cookie's secret, which the server never
  stores: a copy of the table yields no usable Discord token either. `expires_at` is capped at
  the Discord token's own expiry.
- One primary-key read per request (cached for the rest of the request, the rate limiter
  included). PostgreSQL unreachable: StorageUnavailable, which the app answers with its 503.
- Logout deletes the row, so every dashboard process refuses the cookie from then on.
- Expired rows are purged on login, a bounded batch at a time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import time
from collections.abc import MutableMapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import cookie_parser

from guildkit.dashboard.storage import StorageUnavailable, storage
from guildkit.db.schema import dashboard_sessions

SESSION_COOKIE: Final = "guildkit_session"
LOGIN_COOKIE: Final = "guildkit_login"
LOGIN_MAX_AGE: Final = 600
SECRET_BYTES: Final = 32
# Where a request's looked-up session is kept (the ASGI scope's per-request state).
_STATE_KEY: Final = "guildkit.session"

_DS = dashboard_sessions.c
_LOAD = select(
    _DS.user_id,
    _DS.username,
    _DS.display_name,
    _DS.avatar,
    _DS.access_token,
    _DS.csrf_token,
    _DS.expires_at,
).where(_DS.id == bindparam("key"))
_END = delete(dashboard_sessions).where(_DS.id == bindparam("key"))
# SKIP LOCKED: two processes purging at once take different rows instead of waiting (or
# deadlocking) on each other.
_PURGE = delete(dashboard_sessions).where(
    _DS.id.in_(
        select(_DS.id)
        .where(_DS.expires_at <= bindparam("now"))
        .order_by(_DS.expires_at)
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
)


@dataclass(frozen=True, slots=True)
class Session:
    user_id: str
    username: str
    display_name: str
    avatar: str | None
    access_token: str = field(repr=False)
    csrf_token: str = field(repr=False)
    expires_at: int
    # sha256 of the cookie's secret: the row's primary key.
    key: bytes = field(repr=False)

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


def session_key(secret: bytes) -> bytes:
    return hashlib.sha256(secret).digest()


_TOKEN_FORMAT: Final = "aesgcm1:"


def _token_cipher(secret: bytes) -> AESGCM:
    # Domain-separated from the row key (sha256 of the bare secret), so one never gives the other.
    return AESGCM(hashlib.sha256(b"guildkit.dashboard.token\x00" + secret).digest())


def seal_token(secret: bytes, token: str) -> str:
    """The Discord access token as stored: AES-GCM under a key only the cookie can rebuild,
    bound to the row (its key is the associated data), so a row's token cannot be moved."""
    nonce = secrets.token_bytes(12)
    sealed = _token_cipher(secret).encrypt(nonce, token.encode(), session_key(secret))
    return _TOKEN_FORMAT + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def open_token(secret: bytes, stored: str) -> str | None:
    """The token back, or None if the row's value was not sealed with this secret."""
    if not stored.startswith(_TOKEN_FORMAT):
        return None
    try:
        raw = base64.urlsafe_b64decode(stored[len(_TOKEN_FORMAT) :].encode("ascii"))
        plain = _token_cipher(secret).decrypt(raw[:12], raw[12:], session_key(secret))
    except (InvalidTag, ValueError, binascii.Error):
        return None
    return plain.decode()


def _text(value: object) -> str:
    # Names come from Discord, where anyone picks them; PostgreSQL text cannot hold U+0000.
    return str(value).replace("\x00", "\ufffd")


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class SessionStore:
    """Creates, looks up and ends sessions; signs and checks the cookies and login cookies."""

    def __init__(
        self,
        engine: AsyncEngine,
        secret_key: str,
        *,
        read_engine: AsyncEngine | None = None,
        max_age_seconds: int = 8 * 3600,
        purge_batch: int = 200,
    ) -> None:
        self.max_age = max_age_seconds
        self.purge_batch = purge_batch
        self._engine = engine
        # The lookup may use the cheap autocommit engine (guildkit.db.engine.create_read_engine);
        # then a connection that died with a restarted server is retried once, as SettingsStore
        # does. Writes always use the pre-pinged engine.
        self._read_engine = read_engine or engine
        self._retry_reads = read_engine is not None
        self._cookies = URLSafeTimedSerializer(secret_key, salt="guildkit.dashboard.session.v2")
        self._logins = URLSafeTimedSerializer(secret_key, salt="guildkit.dashboard.login")

    # --- sessions -------------------------------------------------------------------------------

    async def create(
        self,
        *,
        user_id: str,
        username: str,
        display_name: str,
        avatar: str | None,
        access_token: str,
        token_expires_in: int,
        now: float | None = None,
    ) -> tuple[Session, str]:
        """A new session, stored; returns it with the cookie value that refers to it.

        Also purges up to `purge_batch` expired sessions, in the same transaction.
        """
        issued = time.time() if now is None else now
        secret = secrets.token_bytes(SECRET_BYTES)
        session = Session(
            user_id=str(int(user_id)),
            username=_text(username),
            display_name=_text(display_name),
            avatar=None if avatar is None else _text(avatar),
            access_token=access_token,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=int(issued + min(self.max_age, max(token_expires_in, 0))),
            key=session_key(secret),
        )
        async with storage(), self._engine.begin() as conn:
            await conn.execute(
                insert(dashboard_sessions).values(
                    id=session.key,
                    user_id=int(session.user_id),
                    username=session.username,
                    display_name=session.display_name,
                    avatar=session.avatar,
                    access_token=seal_token(secret, session.access_token),
                    csrf_token=session.csrf_token,
                    created_at=_at(issued),
                    expires_at=_at(session.expires_at),
                )
            )
            await conn.execute(_PURGE, {"now": _at(time.time()), "limit": self.purge_batch})
        cookie = self._cookies.dumps(base64.urlsafe_b64encode(secret).decode("ascii"))
        return session, cookie

    def key_of(self, cookie: str | None) -> bytes | None:
        """The row key a cookie refers to, or None if it is missing, forged, malformed or stale."""
        secret = self._secret_of(cookie)
        return None if secret is None else session_key(secret)

    def _secret_of(self, cookie: str | None) -> bytes | None:
        if not cookie:
            return None
        try:
            encoded = self._cookies.loads(cookie, max_age=self.max_age)
            secret = base64.urlsafe_b64decode(str(encoded).encode("ascii"))
        except (BadSignature, TypeError, ValueError, UnicodeError, binascii.Error):
            return None
        return secret if len(secret) == SECRET_BYTES else None

    async def load(self, cookie: str | None, *, now: float | None = None) -> Session | None:
        """The session a cookie refers to, or None: no such cookie or row, ended, or expired.

        Raises StorageUnavailable when PostgreSQL cannot be asked.
        """
        secret = self._secret_of(cookie)
        if secret is None:
            return None
        key = session_key(secret)
        async with storage():
            row = await self._load_row(key)
        if row is None:
            return None
        access_token = open_token(secret, row.access_token)
        if access_token is None:
            return None
        session = Session(
            user_id=str(row.user_id),
            username=row.username,
            display_name=row.display_name,
            avatar=row.avatar,
            access_token=access_token,
            csrf_token=row.csrf_token,
            expires_at=int(row.expires_at.timestamp()),
            key=key,
        )
        if session.expires_at <= (time.time() if now is None else now):
            return None
        return session

    async def _load_row(self, key: bytes) -> Any:
        for attempt in (0, 1):
            try:
                async with self._read_engine.connect() as conn:
                    return (await conn.execute(_LOAD, {"key": key})).first()
            except DBAPIError as exc:
                if attempt or not (self._retry_reads and exc.connection_invalidated):
                    raise
        raise AssertionError("unreachable")

    async def end(self, session: Session) -> None:
        """Delete the session: its cookie is refused by every dashboard process from now on."""
        async with storage(), self._engine.begin() as conn:
            await conn.execute(_END, {"key": session.key})

    async def purge_expired(self, *, now: float | None = None, limit: int | None = None) -> int:
        """Delete up to `limit` (default `purge_batch`) expired sessions; how many went."""
        at = _at(time.time() if now is None else now)
        async with storage(), self._engine.begin() as conn:
            result = await conn.execute(_PURGE, {"now": at, "limit": limit or self.purge_batch})
        return int(getattr(result, "rowcount", 0) or 0)

    # --- the login round trip (state and PKCE verifier, signed, in a short-lived cookie) -------

    def encode_login(self, attempt: LoginAttempt) -> str:
        return self._logins.dumps(asdict(attempt))

    def decode_login(self, cookie: str | None) -> LoginAttempt | None:
        if not cookie:
            return None
        try:
            return LoginAttempt(**self._logins.loads(cookie, max_age=LOGIN_MAX_AGE))
        except (BadSignature, TypeError, ValueError):
            return None


# --- one lookup per request ---------------------------------------------------------------------


def cookie_from_scope(scope: MutableMapping[str, Any], name: str) -> str | None:
    # Parsed as Starlette parses request.cookies, so this is the cookie the app will see.
    for header, value in scope.get("headers", []):
        if header == b"cookie":
            found = cookie_parser(value.decode("latin-1")).get(name)
            if found is not None:
                return found
    return None


async def session_for(scope: MutableMapping[str, Any], store: SessionStore) -> Session | None:
    """The request's session, looked up at most once per request (the rate limiter and the
    route share it through the scope's per-request state). Raises StorageUnavailable, every
    time it is asked, when the lookup could not reach PostgreSQL."""
    state = scope.setdefault("state", {})
    if _STATE_KEY not in state:
        try:
            state[_STATE_KEY] = await store.load(cookie_from_scope(scope, SESSION_COOKIE))
        except StorageUnavailable as exc:
            state[_STATE_KEY] = exc
    found = state[_STATE_KEY]
    if isinstance(found, StorageUnavailable):
        raise found
    return found if isinstance(found, Session) else None


def looked_up_session(scope: MutableMapping[str, Any]) -> Session | None:
    """The session if this request has already looked it up successfully, without a query."""
    found = scope.get("state", {}).get(_STATE_KEY)
    return found if isinstance(found, Session) else None


def forget_session(scope: MutableMapping[str, Any]) -> None:
    """After logout: the rest of this request (its error page, say) sees no session."""
    scope.setdefault("state", {})[_STATE_KEY] = None
