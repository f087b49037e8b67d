"""Start children in order, keep them running, stop them in reverse order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence

from guildkit.supervisor.child import ChildSpec, SupervisedChild
from guildkit.supervisor.output import OutputSink

log = logging.getLogger("guildkit.supervisor")


class Supervisor:
    def __init__(self, specs: list[ChildSpec], output: OutputSink) -> None:
        self.children = [SupervisedChild(spec, output) for spec in specs]
        self.stop_requested = asyncio.Event()

    def child(self, name: str) -> SupervisedChild:
        return next(c for c in self.children if c.spec.name == name)

    async def _unless_stopped(self, waiting: Awaitable[Sequence[bool]]) -> Sequence[bool] | None:
        """`waiting`'s result, or None if a stop was requested first."""
        task = asyncio.ensure_future(waiting)
        stop = asyncio.ensure_future(self.stop_requested.wait())
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if task.done():
            return task.result()
        task.cancel()
        return None

    async def start(self) -> list[str]:
        """Start every child, waiting for a gating child's readiness before the next one.

        Returns the names of the children that did not become ready in time.
        """
        not_ready: list[str] = []
        pending: list[SupervisedChild] = []
        for child in self.children:
            if self.stop_requested.is_set():
                return not_ready
            child.start()
            if not child.spec.gates_next:
                pending.append(child)
                continue
            ready = await self._unless_stopped(asyncio.gather(child.wait_ready()))
            if ready is None:
                return not_ready
            if not ready[0]:
                log.warning(
                    "%s not ready within %.0fs; starting the rest anyway",
                    child.spec.name,
                    child.spec.ready_timeout,
                )
                not_ready.append(child.spec.name)
        results = await self._unless_stopped(asyncio.gather(*(c.wait_ready() for c in pending)))
        if results is not None:
            not_ready += [c.spec.name for c, ok in zip(pending, results, strict=True) if not ok]
        return not_ready

    async def stop(self) -> None:
        for child in reversed(self.children):
            await child.stop()

    def request_stop(self) -> None:
        self.stop_requested.set()
