"""The Redis tier's circuit breaker probes in the background: no read ever waits on a probe;
whatever a Redis call raises makes Redis unavailable, never an error for the caller."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from guildkit.settings.breaker import BreakerState, CircuitBreaker
from guildkit.settings.publisher import InvalidationPublisher
from guildkit.settings.redis_cache import RedisSettingsCache, RedisUnavailable
from guildkit.settings.redis_client import cache_client
from guildkit.settings.types import ChangeSignal


class ManualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class HungRedis:
    """Accepts connections and records what it is sent, never answers."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.server: asyncio.Server | None = None

    async def _swallow(self, reader: asyncio.StreamReader, _w: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            self.received.extend(data)

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._swallow, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])


@pytest.fixture
async def hung() -> AsyncIterator[tuple[HungRedis, Redis]]:
    server = HungRedis()
    port = await server.start()
    client = cache_client(f"redis://127.0.0.1:{port}/0", timeout=0.05)
    yield server, client
    await client.aclose()
    assert server.server is not None
    server.server.close()


class StateWatch:
    """Collects the breaker's transitions, so a test can await one."""

    def __init__(self) -> None:
        self.changed = asyncio.Event()

    def __call__(self, _state: BreakerState) -> None:
        self.changed.set()

    async def until(self, breaker: CircuitBreaker, state: BreakerState) -> None:
        async with asyncio.timeout(5):
            while breaker.state is not state:
                self.changed.clear()
                await self.changed.wait()


async def test_half_open_reads_do_not_wait_on_a_hung_redis(
    hung: tuple[HungRedis, Redis],
) -> None:
    server, client = hung
    clock = ManualClock()
    watch = StateWatch()
    breaker = CircuitBreaker(failure_threshold=1, reset_after=1.0, clock=clock, on_change=watch)
    l2 = RedisSettingsCache(client, breaker=breaker, timeout=0.05)
    with pytest.raises(RedisUnavailable):
        await l2.get(1)  # times out: the breaker opens
    assert breaker.state is BreakerState.OPEN
    server.received.clear()
    clock.now += 1.0
    with pytest.raises(RedisUnavailable, match="probing"):
        await l2.get(1)  # answered at once: this read is not the probe
    await watch.until(breaker, BreakerState.OPEN)  # the background probe timed out
    # The probe reached out (a fresh connection starts with HELLO, then would PING) ...
    assert b"HELLO" in bytes(server.received) or b"PING" in bytes(server.received)
    # ... and no read was sent while the breaker was not closed.
    assert b"GET" not in bytes(server.received)


async def test_a_successful_probe_closes_the_breaker(redis: Redis) -> None:
    clock = ManualClock()
    watch = StateWatch()
    breaker = CircuitBreaker(failure_threshold=1, reset_after=1.0, clock=clock, on_change=watch)
    l2 = RedisSettingsCache(redis, breaker=breaker, timeout=1.0)
    breaker.record_failure()
    clock.now += 1.0
    with pytest.raises(RedisUnavailable, match="probing"):
        await l2.get(1)
    await watch.until(breaker, BreakerState.CLOSED)
    assert await l2.get(1) is None  # reads reach Redis again (a miss for this key)


class ClosedTransportRedis:
    """What redis-py does on uvloop when Redis closed the connection between connect and
    HELLO: it writes to a closed transport, and uvloop raises RuntimeError."""

    def __init__(self) -> None:
        self.calls = 0

    def _fail(self) -> None:
        self.calls += 1
        raise RuntimeError("unable to perform operation on <TCPTransport closed=True>")

    async def get(self, _key: str) -> bytes:
        self._fail()
        return b""

    def pipeline(self, *, transaction: bool = True) -> ClosedTransportRedis:
        return self

    def eval(self, *_args: object) -> None:
        pass

    def publish(self, *_args: object) -> None:
        pass

    async def execute(self) -> list[object]:
        self._fail()
        return []


async def test_any_error_of_a_redis_call_is_redis_unavailable_and_counts_for_the_breaker() -> None:
    breaker = CircuitBreaker(failure_threshold=2)
    cache = RedisSettingsCache(ClosedTransportRedis(), breaker=breaker)  # type: ignore[arg-type]
    for _ in range(2):
        with pytest.raises(RedisUnavailable, match="RuntimeError"):
            await cache.get(1)
    assert breaker.state is BreakerState.OPEN


async def test_a_publish_that_fails_in_any_way_never_fails_the_committed_write() -> None:
    fake = ClosedTransportRedis()
    publisher = InvalidationPublisher(RedisSettingsCache(fake))  # type: ignore[arg-type]
    signal = ChangeSignal(guild_id=1, version=2, change_seq=3)
    assert await publisher.publish(signal) is False
    assert publisher.failures == 1 and fake.calls == 1
