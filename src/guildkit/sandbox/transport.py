"""One gateway websocket: JSON frames, optional zlib-stream compression, ordered sends."""

from __future__ import annotations

import asyncio
import contextlib
import json
import zlib
from typing import Any

from aiohttp import web


class GatewayConnection:
    """Frames are queued and written by one task, so replays and live events never interleave."""

    def __init__(
        self, ws: web.WebSocketResponse, request: web.Request, *, zlib_stream: bool
    ) -> None:
        self.ws = ws
        self._request = request
        self.compression = "zlib-stream" if zlib_stream else None
        # zlib-stream: one deflate context for the whole connection, each frame ending in a
        # Z_SYNC_FLUSH marker (00 00 ff ff), which is how discord.py finds message boundaries.
        self._deflate = zlib.compressobj() if zlib_stream else None
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_loop())

    def send(self, frame: dict[str, Any]) -> None:
        self._queue.put_nowait(frame)

    async def _write_loop(self) -> None:
        while (frame := await self._queue.get()) is not None:
            text = json.dumps(frame, separators=(",", ":"))
            try:
                if self._deflate is None:
                    await self.ws.send_str(text)
                else:
                    data = self._deflate.compress(text.encode()) + self._deflate.flush(
                        zlib.Z_SYNC_FLUSH
                    )
                    await self.ws.send_bytes(data)
            except (ConnectionError, RuntimeError):
                return

    async def close(self, code: int, message: str = "") -> None:
        """Close with a gateway close code once everything queued before it was sent."""
        self._queue.put_nowait(None)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._writer, 2.0)
        with contextlib.suppress(Exception):
            await self.ws.close(code=code, message=message.encode())

    def abort(self) -> None:
        """Drop the TCP connection without a close frame, like a network failure."""
        self._writer.cancel()
        transport = self._request.transport
        if transport is not None:
            transport.abort()

    async def finish(self) -> None:
        self._queue.put_nowait(None)
        self._writer.cancel()
        with contextlib.suppress(BaseException):
            await self._writer
