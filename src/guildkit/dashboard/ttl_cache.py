"""A small in-process TTL cache with single-flight loading.

Discord rate-limits per route and per token; when fifty requests for one user arrive together they
must share one upstream call, not make fifty.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(
        self,
        ttl_seconds: float,
        *,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._values: dict[K, tuple[float, V]] = {}
        self._loading: dict[K, asyncio.Future[V]] = {}

    def peek(self, key: K, *, max_age: float | None = None) -> V | None:
        entry = self._values.get(key)
        if entry is None:
            return None
        stored_at, value = entry
        age = self._clock() - stored_at
        if age >= self._ttl or (max_age is not None and age >= max_age):
            return None
        return value

    def invalidate(self, key: K) -> None:
        self._values.pop(key, None)

    async def get(
        self, key: K, load: Callable[[], Awaitable[V]], *, max_age: float | None = None
    ) -> V:
        cached = self.peek(key, max_age=max_age)
        if cached is not None:
            return cached
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            value = await load()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            # Mark retrieved so a failure nobody else awaited is not logged as "never retrieved".
            future.exception()
            raise
        else:
            future.set_result(value)
            self._store(key, value)
            return value
        finally:
            self._loading.pop(key, None)

    def _store(self, key: K, value: V) -> None:
        if len(self._values) >= self._max:
            now = self._clock()
            self._values = {k: e for k, e in self._values.items() if now - e[0] < self._ttl}
            if len(self._values) >= self._max:
                self._values.pop(next(iter(self._values)))
        self._values[key] = (self._clock(), value)
