"""Drive a `tests.support.reader_process` child from a test."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any


class ReaderProcess:
    """A child process printing JSON lines (by default `tests.support.reader_process`)."""

    def __init__(self, *args: str, module: str = "tests.support.reader_process") -> None:
        self._module = module
        self._args = args
        self.proc: asyncio.subprocess.Process | None = None
        self.events: list[dict[str, Any]] = []
        self._new_event = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None

    @classmethod
    def module(cls, module: str, *args: str) -> ReaderProcess:
        return cls(*args, module=module)

    async def start(self, within: float = 20.0) -> dict[str, Any]:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            self._module,
            *self._args,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._pump = asyncio.create_task(self._read_stdout())
        return await self.wait_for(lambda e: e["event"] == "ready", within)

    async def _read_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.events.append(json.loads(line))
                self._new_event.set()

    async def wait_for(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        within: float,
        after: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The first event matching `predicate` (that came after the event `after`)."""
        deadline = time.monotonic() + within
        seen = 0 if after is None else next(i for i, e in enumerate(self.events) if e is after) + 1
        while True:
            for event in self.events[seen:]:
                if predicate(event):
                    return event
            seen = len(self.events)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching event within {within}s; last: {self.events[-5:]}")
            self._new_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_event.wait(), remaining)

    async def wait_for_version(self, guild_id: int, version: int, within: float) -> dict[str, Any]:
        return await self.wait_for(
            lambda e: (
                e["event"] == "read" and e["guild"] == str(guild_id) and e["version"] >= version
            ),
            within,
        )

    async def wait_for_connection(
        self, path: str, connected: bool, within: float, after: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return await self.wait_for(
            lambda e: (
                e["event"] == "connection" and e["path"] == path and e["connected"] is connected
            ),
            within,
            after,
        )

    def reads(self, guild_id: int) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == "read" and e["guild"] == str(guild_id)]

    def errors(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == "error"]

    def first_signal_path(self, guild_id: int, version: int) -> str | None:
        for e in self.events:
            if e["event"] == "signal" and e["guild"] == str(guild_id) and e["version"] == version:
                return str(e["path"])
        return None

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._pump is not None:
            self._pump.cancel()

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
