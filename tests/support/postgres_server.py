"""A private PostgreSQL 15 cluster per test, so faults never touch the shared server on :5432.

We run as root and PostgreSQL refuses to, so every server process (initdb, postgres) drops to
the `postgres` system user in preexec_fn, and everything it touches is chowned to it. The
postmaster is our direct child (not daemonised by pg_ctl) so we can signal and reap it.

`initdb` costs ~1 s; it runs once per process into a template directory that each instance
copies (~0.05 s on tmpfs). A template can also be a stopped instance's data directory, which is
how the fixtures share one migrated `guildkit` database between tests.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Literal

from tests.support.closing import ClosedOnExit
from tests.support.processes import (
    GUARDIAN,
    REAPER,
    child_pids,
    die_with_parent_preexec,
    free_port,
    hard_kill,
    scratch_root,
    signal_pids,
    wait_pids_gone,
)

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER = "postgres"

StopMode = Literal["smart", "fast", "immediate"]
_STOP_SIGNALS: dict[StopMode, signal.Signals] = {
    "smart": signal.SIGTERM,
    "fast": signal.SIGINT,
    "immediate": signal.SIGQUIT,
}

# Machine-crash durability is worthless in a throwaway cluster, so no fsync. But
# synchronous_commit stays on: without it kill() could lose committed transactions still in
# WAL buffers, which is not the fault we mean; with fsync off it costs only a write().
_SERVER_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "full_page_writes": "off",
    "shared_buffers": "16MB",
    "max_connections": "50",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "checkpoint_timeout": "1h",
    "autovacuum": "off",
    "logging_collector": "off",
    "log_min_messages": "warning",
    "dynamic_shared_memory_type": "mmap",
}


def _pg_ids() -> tuple[int, int]:
    entry = pwd.getpwnam(PG_USER)
    return entry.pw_uid, entry.pw_gid


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            os.lchown(os.path.join(root, name), uid, gid)


def _run_as_postgres(args: list[str], **kwargs: object) -> None:
    uid, gid = _pg_ids()
    subprocess.run(
        args,
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        preexec_fn=die_with_parent_preexec(uid=uid, gid=gid),
        **kwargs,  # type: ignore[call-overload]
    )


_template_lock = threading.Lock()
_template_dir: Path | None = None


def fresh_cluster_template() -> Path:
    """A pristine initdb'd data directory, made once per process and removed at exit."""
    global _template_dir
    with _template_lock:
        if _template_dir is None:
            uid, gid = _pg_ids()
            base = Path(tempfile.mkdtemp(prefix="gk-pg-template-", dir=scratch_root()))
            os.chown(base, uid, gid)
            GUARDIAN.watch_dir(base)
            data = base / "data"
            _run_as_postgres(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    PG_USER,
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                    "--no-instructions",
                    # 1 MB WAL segments keep the copied directory small.
                    "--wal-segsize=1",
                ],
                cwd=base,
            )
            atexit.register(shutil.rmtree, base, True)
            _template_dir = data
        return _template_dir


class PostgresServer(ClosedOnExit):
    """A PostgreSQL 15 postmaster on 127.0.0.1:port, trust auth, socket in its own directory."""

    def __init__(
        self,
        *,
        template: Path | None = None,
        port: int | None = None,
        settings: dict[str, str] | None = None,
        start: bool = True,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        uid, gid = _pg_ids()
        self._uid, self._gid = uid, gid
        self._base = Path(tempfile.mkdtemp(prefix="gk-pg-", dir=scratch_root()))
        # The postmaster needs to traverse the base (data dir, socket, log live under it).
        os.chmod(self._base, 0o755)
        os.chown(self._base, uid, gid)
        GUARDIAN.watch_dir(self._base)
        self.data_dir = self._base / "data"
        source = template or fresh_cluster_template()
        # `cp -a` keeps owner and the 0700 mode PostgreSQL insists on; shutil.copytree doesn't.
        subprocess.run(["cp", "-a", str(source), str(self.data_dir)], check=True)
        if self.data_dir.stat().st_uid != uid:
            _chown_tree(self.data_dir, uid, gid)
        (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
        self._log = self._base / "postgres.log"
        self._settings = {**_SERVER_SETTINGS, **(settings or {})}
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False
        self._stopped: list[int] = []
        self._closed = False
        if start:
            self.start()

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql://{PG_USER}@{self.host}:{self.port}/{database}"

    @property
    def socket_dir(self) -> Path:
        return self._base

    @property
    def pid(self) -> int | None:
        """The postmaster's pid."""
        return self._proc.pid if self._proc is not None else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        """Start the postmaster and return once it accepts connections (after any recovery)."""
        if self.running():
            return
        args = [
            str(PG_BIN / "postgres"),
            "-D", str(self.data_dir),
            "-p", str(self.port),
            "-c", f"listen_addresses={self.host}",
            "-c", f"unix_socket_directories={self._base}",
        ]  # fmt: skip
        for key, value in self._settings.items():
            args += ["-c", f"{key}={value}"]
        log = open(self._log, "ab")  # noqa: SIM115 - handed to the child, closed right after
        try:
            self._proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.data_dir,
                start_new_session=True,
                preexec_fn=die_with_parent_preexec(uid=self._uid, gid=self._gid),
            )
        finally:
            log.close()
        proc = self._proc
        REAPER.register(id(self), lambda: hard_kill(proc, lambda: child_pids(proc.pid)))
        self._paused = False
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        # postmaster.pid's 8th line turns to "ready" once connections are accepted; reading it
        # is cheaper than polling with a client, and it stays "starting" through crash recovery.
        pidfile = self.data_dir / "postmaster.pid"
        deadline = time.monotonic() + timeout
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"postgres exited with {self._proc.returncode}: {self.log_tail()}"
                )
            with contextlib.suppress(OSError):
                lines = pidfile.read_text().splitlines()
                if (
                    len(lines) >= 8
                    and lines[0].strip() == str(self._proc.pid)
                    and lines[7].strip() == "ready"
                ):
                    return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"postgres not ready in {timeout}s: {self.log_tail()}")
            time.sleep(0.005)

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def _server_pids(self) -> list[int]:
        if self._proc is None or self._proc.poll() is not None:
            return []
        return [self._proc.pid, *child_pids(self._proc.pid)]

    def stop(self, mode: StopMode = "fast", timeout: float = 30.0) -> None:
        """Orderly shutdown: smart waits for clients, fast disconnects them, immediate crashes."""
        if self._proc is None or not self.running():
            return
        if self._paused:
            self.resume()
        self._proc.send_signal(_STOP_SIGNALS[mode])
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return
        REAPER.unregister(id(self))

    def restart(self, mode: StopMode = "fast") -> None:
        """The "PostgreSQL restarted" fault: every session is dropped; same port and data."""
        self.stop(mode)
        self.start()

    def kill(self) -> None:
        """SIGKILL the postmaster and its children: a crash; the next start() recovers.

        The backends go too: left alone they'd hold the shared memory segment and the
        next postmaster would refuse to start until they noticed their parent's death.
        """
        if self._proc is None:
            return
        pids = self._server_pids()
        signal_pids(pids, signal.SIGCONT)
        signal_pids(pids, signal.SIGKILL)
        self._proc.wait()
        wait_pids_gone(pids, timeout=10)
        REAPER.unregister(id(self))
        GUARDIAN.unwatch_pids(self._stopped)
        self._stopped = []
        self._paused = False

    def pause(self) -> None:
        """SIGSTOP the postmaster and every backend: a hung PostgreSQL.

        New TCP connections still complete their handshake (kernel backlog) and then hang in
        authentication; queries on existing connections hang until resume().
        """
        pids = self._server_pids()
        assert pids, "postgres is not running"
        # Postmaster first, so it can't fork a backend we would miss.
        signal_pids(pids[:1], signal.SIGSTOP)
        self._stopped = self._server_pids()
        signal_pids(self._stopped, signal.SIGSTOP)
        # Should we die now, the postmaster gets its parent-death SIGKILL, but stopped
        # backends would stay stopped forever; the guardian kills them.
        GUARDIAN.watch_pids(self._stopped)
        self._paused = True

    def resume(self) -> None:
        signal_pids(self._server_pids(), signal.SIGCONT)
        GUARDIAN.unwatch_pids(self._stopped)
        self._stopped = []
        self._paused = False

    @property
    def paused(self) -> bool:
        return self._paused

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL through psql over the unix socket; returns unaligned tuples-only output."""
        result = subprocess.run(
            [
                str(PG_BIN / "psql"),
                "-h",
                str(self._base),
                "-p",
                str(self.port),
                "-U",
                PG_USER,
                "-d",
                database,
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        return result.stdout.strip()

    def create_database(self, name: str) -> str:
        """CREATE DATABASE name; returns its libpq URL."""
        quoted = '"' + name.replace('"', '""') + '"'
        self.psql(f"CREATE DATABASE {quoted}")
        return self.url_for(name)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.running():
            if self._paused:
                self.resume()
            # Immediate: nobody needs a checkpoint of a cluster we are about to delete.
            self.stop("immediate", timeout=5)
        self.kill()
        shutil.rmtree(self._base, ignore_errors=True)
        GUARDIAN.unwatch_dir(self._base)
