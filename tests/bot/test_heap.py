"""The bot gives freed heap memory back once a minute (glibc), and never fails without it."""

from __future__ import annotations

import asyncio

from guildkit.bot.heap import HeapTrimmer, libc_malloc_trim


async def test_the_trimmer_trims_every_interval_until_stopped() -> None:
    calls: list[int] = []

    def trim(pad: int) -> int:
        calls.append(pad)
        return 0

    trimmer = HeapTrimmer(interval=0.01, trim=trim)
    trimmer.start()
    await asyncio.sleep(0.1)
    await trimmer.stop()
    seen = len(calls)
    assert seen >= 3 and set(calls) == {0} and trimmer.trims == seen
    await asyncio.sleep(0.05)
    assert len(calls) == seen  # stopped means stopped
    await trimmer.stop()  # twice is fine


async def test_without_malloc_trim_it_does_nothing() -> None:
    trimmer = HeapTrimmer(interval=0.01, trim=None)
    trimmer.start()
    await asyncio.sleep(0.03)
    await trimmer.stop()
    assert not trimmer.enabled and trimmer.trims == 0


def test_glibc_malloc_trim_is_found_and_callable_here() -> None:
    trim = libc_malloc_trim()  # this test machine runs glibc (Debian)
    assert trim is not None
    assert trim(0) in (0, 1)
    assert HeapTrimmer.for_this_platform().enabled
