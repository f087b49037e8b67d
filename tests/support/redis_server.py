"""A private redis-server per test, so faults never touch the shared Redis on :6379."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.support.closing import ClosedOnExit
from tests.support.processes import (
    GUARDIAN,
    REAPER,
    die_with_parent_preexec,
    free_port,
    hard_kill,
    scratch_root,
)

REDIS_SERVER = "/usr/bin/redis-server"


class RedisServer(ClosedOnExit):
    """One redis-server on 127.0.0.1 with its own port and directory.

    Without persistence by default: `restart()` comes back empty (as a cache Redis does),
    and `restart_from_snapshot()` is the way to come back holding stale data.
    """

    def __init__(self, *, port: int | None = None, save: str = "", start: bool = True) -> None:
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self._save = save
        self._dir = Path(tempfile.mkdtemp(prefix="gk-redis-", dir=scratch_root()))
        GUARDIAN.watch_dir(self._dir)
        self._snapshots = self._dir / "snapshots"
        self._snapshots.mkdir()
        self._log = self._dir / "redis.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False
        self._clients: list[redis.Redis] = []
        self._closed = False
        if start:
            self.start()

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def directory(self) -> Path:
        return self._dir

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start on self.port and return once it answers PING (and has loaded any dump.rdb)."""
        if self.running():
            return
        args = [
            REDIS_SERVER,
            "--port", str(self.port),
            "--bind", self.host,
            "--dir", str(self._dir),
            "--dbfilename", "dump.rdb",
            "--save", self._save,
            "--appendonly", "no",
            "--daemonize", "no",
            "--protected-mode", "no",
            "--logfile", str(self._log),
        ]  # fmt: skip
        self._proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent_preexec(),
        )
        proc = self._proc
        REAPER.register(id(self), lambda: hard_kill(proc))
        self._paused = False
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        probe = redis.Redis(
            host=self.host,
            port=self.port,
            socket_timeout=0.5,
            socket_connect_timeout=0.5,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            while True:
                assert self._proc is not None
                if self._proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited: {self.log_tail()}")
                try:
                    # PING answers LOADING while an RDB is loading, raising BusyLoadingError.
                    if probe.ping():
                        return
                except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                    pass
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"redis-server not ready in {timeout}s: {self.log_tail()}")
                time.sleep(0.005)
        finally:
            probe.close()

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def kill(self) -> None:
        """SIGKILL (works on a paused server too) and wait until the process is gone."""
        if self._proc is not None:
            hard_kill(self._proc)
            REAPER.unregister(id(self))
        self._paused = False

    def pause(self) -> None:
        """SIGSTOP: a hung Redis. The kernel still completes TCP handshakes (backlog), so
        clients connect fine and then time out waiting for replies."""
        assert self._proc is not None and self.running(), "redis-server is not running"
        self._proc.send_signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        if self._proc is not None and self.running():
            self._proc.send_signal(signal.SIGCONT)
        self._paused = False

    @property
    def paused(self) -> bool:
        return self._paused

    def stop(self, timeout: float = 5.0) -> None:
        """Orderly SIGTERM shutdown (with save="" nothing is written to disk)."""
        if self._proc is None or not self.running():
            return
        if self._paused:
            self.resume()
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            hard_kill(self._proc)
        REAPER.unregister(id(self))

    def restart(self, *, keep_data: bool = False) -> None:
        """Kill and start again on the same port; empty unless keep_data (then via a snapshot)."""
        if keep_data:
            self.restart_from_snapshot(self.snapshot())
            return
        self.kill()
        (self._dir / "dump.rdb").unlink(missing_ok=True)
        self.start()

    def flushall(self) -> None:
        with self._admin() as admin:
            admin.flushall()

    def snapshot(self) -> Path:
        """Synchronous SAVE, moved aside to snapshots/ so plain restarts don't load it."""
        with self._admin() as admin:
            admin.save()
        target = self._snapshots / f"snap-{len(list(self._snapshots.iterdir())):03d}.rdb"
        (self._dir / "dump.rdb").replace(target)
        return target

    def restart_from_snapshot(self, path: Path | str) -> None:
        """Kill, put an old RDB in place and start again on the same port: stale data served."""
        self.kill()
        dump = self._dir / "dump.rdb"
        shutil.copyfile(path, dump)
        self.start()
        # Loaded already; removing it keeps a later plain restart() empty.
        dump.unlink(missing_ok=True)

    def _admin(self) -> redis.Redis:
        # A fresh connection each time: a pooled one may be dead after a restart.
        return redis.Redis(
            host=self.host, port=self.port, socket_timeout=10.0, retry=Retry(NoBackoff(), 0)
        )

    def client(
        self,
        *,
        socket_timeout: float = 2.0,
        decode_responses: bool = True,
        retries: int = 0,
    ) -> redis.Redis:
        """A sync client for assertions: short timeout and no retries, so faults surface once.

        (redis-py 8's default is a 5 s timeout with 10 retries, ~1 minute against a hung Redis.)
        Closed by close().
        """
        client = redis.Redis(
            host=self.host,
            port=self.port,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            decode_responses=decode_responses,
            retry=Retry(NoBackoff(), retries),
        )
        self._clients.append(client)
        return client

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for client in self._clients:
            with contextlib.suppress(Exception):
                client.close()
        self.kill()
        shutil.rmtree(self._dir, ignore_errors=True)
        GUARDIAN.unwatch_dir(self._dir)
