"""A TCP proxy that injects connection faults between a client and Redis or PostgreSQL.

Modes:
- forward: bytes pass both ways.
- cut(): every current connection is reset (RST on both sides); new connections are accepted
  and forwarded again, or refused outright with refuse=True until restore().
- blackhole(): every connection, current and new, stays open but bytes vanish both ways,
  the "silently dropped subscription". restore() forwards new connections again, but a
  connection that was black-holed stays dead: its byte stream has holes, and in real life the
  client only learns of it through its own timeout or watchdog.

Run it on the test's loop (`await proxy.start()`) or on its own thread (`start_in_thread()`).
The thread is the safer default: a sync client (redis-py's Redis) used from an async test
blocks the test's loop, and a proxy on that loop would then never forward its bytes. The
control methods are plain sync calls that work from any thread in either mode.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Self, TypeVar

from tests.support.closing import ClosedOnExit
from tests.support.processes import free_port

Mode = Literal["forward", "blackhole", "refuse"]
T = TypeVar("T")

_CHUNK = 65536


def _reset_on_close(writer: asyncio.StreamWriter) -> None:
    """Abort the transport with SO_LINGER 0, so the peer gets a RST rather than a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass(eq=False)
class _Connection:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    blackholed: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def reset(self) -> None:
        _reset_on_close(self.client)
        if self.upstream is not None:
            _reset_on_close(self.upstream)


class TcpProxy(ClosedOnExit):
    """Listen on 127.0.0.1:port and relay to target_host:target_port, with faults on demand."""

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        listen_host: str = "127.0.0.1",
        port: int | None = None,
    ) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.host = listen_host
        self.port = port or free_port(listen_host)
        self.mode: Mode = "forward"
        self.total_connections = 0
        self.bytes_to_target = 0
        self.bytes_from_target = 0
        self.bytes_dropped = 0
        self._conns: set[_Connection] = set()
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pending_listen: asyncio.Task[None] | None = None

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening on the running loop."""
        self._loop = asyncio.get_running_loop()
        await self._serve(self._bind())

    def start_in_thread(self) -> Self:
        """Start on a private event loop in a daemon thread; returns self once listening."""
        sock = self._bind()  # bound and listening before we return: no race for the caller
        loop = asyncio.new_event_loop()
        self._loop = loop
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve(sock))
            except BaseException as exc:
                ready.set_exception(exc)
                loop.close()
                return
            ready.set_result(None)
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name=f"tcp-proxy-{self.port}", daemon=True)
        self._thread.start()
        ready.result(timeout=10)
        return self

    async def aclose(self) -> None:
        """Stop listening and reset every connection."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if self._in_loop_thread():
            await self._shutdown()
        else:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._shutdown(), loop))
        self._stop_thread()

    def close(self) -> None:
        """Stop listening and reset every connection, from sync code on any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if self._in_loop_thread():
            # Can't block on our own loop; the reset itself is synchronous.
            self._stop_listening()
            for conn in list(self._conns):
                conn.reset()
                for task in conn.tasks:
                    task.cancel()
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        self._stop_thread()

    def _stop_thread(self) -> None:
        if self._thread is not None and self._loop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __enter__(self) -> Self:
        return self.start_in_thread()

    # -- faults -------------------------------------------------------------------------------

    def cut(self, *, refuse: bool = False) -> None:
        """Reset every current connection; with refuse=True also refuse new ones until
        restore() (the port stops listening, so connects get ECONNREFUSED)."""
        self._call(lambda: self._cut(refuse))

    def blackhole(self) -> None:
        """Silently drop all bytes on current and new connections, keeping them open."""
        self._call(self._blackhole)

    def restore(self) -> None:
        """Forward new connections again (black-holed ones stay dead; see the module doc)."""
        self._call(self._restore)

    # -- stats --------------------------------------------------------------------------------

    @property
    def active_connections(self) -> int:
        return len(self._conns)

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def url(self, scheme: str, path: str = "", user: str = "") -> str:
        """e.g. url("redis", "/0") or url("postgresql", "/guildkit", user="postgres")."""
        auth = f"{user}@" if user else ""
        return f"{scheme}://{auth}{self.host}:{self.port}{path}"

    # -- internals ----------------------------------------------------------------------------

    def _in_loop_thread(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def _call(self, fn: Callable[[], T]) -> T:
        """Run fn on the proxy's loop, from whichever thread we are on."""
        loop = self._loop
        assert loop is not None, "proxy not started"
        if self._in_loop_thread():
            return fn()

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=10)

    def _bind(self) -> socket.socket:
        # A listening socket made synchronously: connects succeed (kernel backlog) from the
        # moment this returns, even before the loop gets round to accepting.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        return sock

    async def _serve(self, sock: socket.socket) -> None:
        self._server = await asyncio.start_server(self._handle, sock=sock)

    def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._pending_listen is not None:
            self._pending_listen.cancel()
            self._pending_listen = None

    def _cut(self, refuse: bool) -> None:
        for conn in list(self._conns):
            conn.reset()
        if refuse:
            self.mode = "refuse"
            self._stop_listening()
        elif self.mode == "refuse":
            self.mode = "forward"

    def _blackhole(self) -> None:
        self.mode = "blackhole"
        for conn in self._conns:
            conn.blackholed = True

    def _restore(self) -> None:
        self.mode = "forward"
        if self._server is None and self._pending_listen is None:
            assert self._loop is not None
            sock = self._bind()

            async def serve() -> None:
                await self._serve(sock)
                self._pending_listen = None

            self._pending_listen = self._loop.create_task(serve())

    async def _shutdown(self) -> None:
        self._stop_listening()
        tasks: list[asyncio.Task[None]] = []
        for conn in list(self._conns):
            conn.reset()
            tasks.extend(conn.tasks)
        current = asyncio.current_task()
        tasks = [t for t in tasks if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Python 3.11's start_server calls task.exception() on the handler task, which raises
        # (and logs noise) if that task ends cancelled; so shutdown's cancel ends it normally.
        with contextlib.suppress(asyncio.CancelledError):
            await self._relay(reader, writer)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "refuse":  # accepted just before the listener closed
            _reset_on_close(writer)
            return
        current = asyncio.current_task()
        assert current is not None
        self.total_connections += 1
        conn = _Connection(client=writer, blackholed=self.mode == "blackhole", tasks=[current])
        self._conns.add(conn)
        try:
            if not conn.blackholed:
                try:
                    up_reader, up_writer = await asyncio.open_connection(
                        self.target_host, self.target_port
                    )
                except OSError:
                    # Target down: the client should see a dead connection, as it would directly.
                    _reset_on_close(writer)
                    return
                conn.upstream = up_writer
            if conn.upstream is None or conn.blackholed:
                await self._pump(reader, None, conn, to_target=True)
                return
            up = asyncio.create_task(self._pump(reader, up_writer, conn, to_target=True))
            down = asyncio.create_task(self._pump(up_reader, writer, conn, to_target=False))
            conn.tasks += [up, down]
            done, _ = await asyncio.wait([up, down], return_when=asyncio.FIRST_COMPLETED)
            if up not in done and conn.blackholed:
                # The target hung up behind the black hole: the client must not find out;
                # only its own close (or a cut) ends this connection.
                await up
        finally:
            self._conns.discard(conn)
            for task in conn.tasks:
                if task is not current:
                    task.cancel()
            # Pass a close on as a FIN; a no-op on transports already reset.
            for w in (conn.client, conn.upstream):
                if w is not None:
                    with contextlib.suppress(OSError, RuntimeError):
                        w.close()

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter | None,
        conn: _Connection,
        *,
        to_target: bool,
    ) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(_CHUNK):
                if conn.blackholed or writer is None:
                    self.bytes_dropped += len(data)
                    continue
                if to_target:
                    self.bytes_to_target += len(data)
                else:
                    self.bytes_from_target += len(data)
                writer.write(data)
                await writer.drain()
