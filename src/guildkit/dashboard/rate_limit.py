"""A per-client token-bucket limit on requests that change things or start a login.

Limits (defaults in DashboardOptions, per dashboard process):
- unsafe requests (POST, PUT, PATCH, DELETE: the API's writes, the pages' forms, logout) from a
  logged-in user: `write_rate_per_second` (10) sustained, bursts of `write_burst` (20), shared
  by all of that user's sessions (otherwise logging in again would buy a fresh bucket);
- the same from a client without a valid session, and every `/auth/` request (login and its
  callback cost a Discord call each), keyed by the client's address, with the same numbers.
Reads (GET/HEAD/OPTIONS outside `/auth/`) are not limited here.

A refused request gets 429 with `Retry-After` (whole seconds) before its body is read. The key
of a session is its user id, from the session's row (the request's one lookup, which the route
then reuses), so a client cannot escape its bucket by varying anything it controls; a forged,
expired or logged-out cookie counts as no session, and so does one that cannot be looked up
while PostgreSQL is unreachable (the route then answers 503).
The client address is the ASGI `client` (uvicorn resolves X-Forwarded-For only from trusted
proxies), never a header read here.
"""

from __future__ import annotations

import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

from guildkit.dashboard.sessions import SessionStore, session_for
from guildkit.dashboard.storage import StorageUnavailable

UNLIMITED_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """Token buckets by key, refilled lazily; at most `max_keys` remembered (least recent go)."""

    def __init__(
        self,
        *,
        rate: float,
        burst: int,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str) -> float:
        """Take a token: 0.0 if granted, else the seconds until one will be available."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=float(self.burst), updated=now)
            self._buckets[key] = bucket
            # Forgetting the least recently used key only ever hands it a fresh (full) bucket,
            # so the memory bound costs a little precision, never correctness of the limit's
            # direction for active clients.
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def __len__(self) -> int:
        return len(self._buckets)


def is_limited(method: str, path: str) -> bool:
    return method not in UNLIMITED_METHODS or path.startswith("/auth/")


class RateLimit:
    """Pure ASGI middleware: 429 + Retry-After once a client's bucket is empty."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        sessions: SessionStore,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.sessions = sessions
        self.buckets = TokenBuckets(rate=rate, burst=burst, clock=clock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_limited(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(await self._key(scope))
        if wait <= 0.0:
            await self.app(scope, receive, send)
            return
        await self._refuse(scope, send, max(1, math.ceil(wait)))

    async def _key(self, scope: Scope) -> str:
        try:
            session = await session_for(scope, self.sessions)
        except StorageUnavailable:
            session = None
        if session is not None:
            return f"user:{session.user_id}"
        client = scope.get("client")
        return f"ip:{client[0] if client else 'unknown'}"

    async def _refuse(self, scope: Scope, send: Send, retry_after: int) -> None:
        message = f"too many requests; try again in {retry_after} s"
        if scope["path"].startswith("/api/"):
            body = json.dumps({"detail": message}).encode()
            content_type = b"application/json"
        else:
            body = f"<!doctype html><title>429</title><p>{message}</p>".encode()
            content_type = b"text/html; charset=utf-8"
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(retry_after).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
