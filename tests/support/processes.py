"""Child processes for fault-injection tests: spawn, watch output, signal, and always reap.

Every process started here (or by the private servers) is registered with a process-wide
reaper, so nothing outlives the test run even when a test fails before its teardown: the
reaper runs at interpreter exit and wakes a SIGSTOPped process before killing it, because a
stopped process ignores SIGTERM until continued.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from tests.support.closing import ClosedOnExit

_PR_SET_PDEATHSIG = 1

LinePredicate = str | re.Pattern[str] | Callable[[str], bool]


def scratch_root() -> str:
    """Where private servers keep their files: tmpfs when roomy, since copying a PostgreSQL
    data directory there takes ~0.05 s against ~0.4 s on disk. GUILDKIT_TEST_TMPDIR overrides."""
    override = os.environ.get("GUILDKIT_TEST_TMPDIR")
    if override:
        return override
    with contextlib.suppress(OSError):
        stat = os.statvfs("/dev/shm")
        if stat.f_bavail * stat.f_frsize > 2 * 1024**3 and os.access("/dev/shm", os.W_OK):
            return "/dev/shm"
    return tempfile.gettempdir()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the kernel's pick, so collisions are rare)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, timeout: float) -> None:
    """Block until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s") from None
            time.sleep(0.01)


def pid_alive(pid: int) -> bool:
    """True while pid exists and is not a zombie (zombies of reparented processes linger)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # The state field follows the parenthesised command name, which may itself contain spaces.
    state = stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3]
    return state not in (b"Z", b"X")


def child_pids(parent: int) -> list[int]:
    """Direct children of parent, read from /proc (no psutil in the environment)."""
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2 :].split()
        if int(fields[1]) == parent:
            found.append(int(entry))
    return found


def signal_pids(pids: Sequence[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def wait_pids_gone(pids: Sequence[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(pid_alive(pid) for pid in pids):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"processes {list(pids)} still alive after {timeout}s")
        time.sleep(0.005)


def die_with_parent_preexec(uid: int | None = None, gid: int | None = None) -> Callable[[], None]:
    """A preexec_fn that drops to uid/gid, then asks the kernel to SIGKILL us if we're orphaned.

    The credentials change comes first because the kernel clears the parent-death signal when
    the effective uid changes. The death signal fires when the *thread* that forked exits, so
    it is only armed when spawning from the main thread (whose end is the process's end);
    otherwise a server restarted from a worker thread would die with that thread.
    """
    arm = threading.current_thread() is threading.main_thread()

    def preexec() -> None:
        if gid is not None:
            os.setgroups([])
            os.setgid(gid)
        if uid is not None:
            os.setuid(uid)
        if arm:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    return preexec


class _Reaper:
    """Process-wide registry of everything we spawned, emptied at interpreter exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: dict[int, Callable[[], object]] = {}
        atexit.register(self.reap_all)

    def register(self, key: int, killer: Callable[[], object]) -> None:
        with self._lock:
            self._procs[key] = killer

    def unregister(self, key: int) -> None:
        with self._lock:
            self._procs.pop(key, None)

    def reap_all(self) -> None:
        with self._lock:
            killers = list(self._procs.values())
            self._procs.clear()
        for killer in killers:
            with contextlib.suppress(Exception):
                killer()


REAPER = _Reaper()

# Runs in its own session, so the terminal's Ctrl-C and our death don't take it with us. It
# learns of our death from EOF on stdin, however we died (even SIGKILL, which skips atexit).
_GUARDIAN_CODE = r"""
import os, shutil, signal, sys, time
pids, groups, dirs = {}, set(), set()
def start_time(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
        return stat[stat.rindex(b")") + 2 :].split()[19].decode()
    except (OSError, IndexError):
        return None
for line in sys.stdin:
    op, _, arg = line.rstrip("\n").partition(" ")
    if op == "+pid":
        pid, started = arg.split()
        pids[int(pid)] = started
    elif op == "-pid":
        pids.pop(int(arg), None)
    elif op == "+pg":
        groups.add(int(arg))
    elif op == "-pg":
        groups.discard(int(arg))
    elif op == "+dir":
        dirs.add(arg)
    elif op == "-dir":
        dirs.discard(arg)
for pid, started in pids.items():
    if start_time(pid) == started:  # not a recycled pid
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except OSError:
                pass
for pgid in groups:
    for sig in (signal.SIGCONT, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except OSError:
            pass
time.sleep(0.2)  # let the killed servers stop writing into their directories
for path in dirs:
    shutil.rmtree(path, ignore_errors=True)
"""


class _Guardian:
    """A watchdog process that cleans up after us if we die without running atexit.

    The parent-death signal already kills our direct children; the guardian covers what it
    can't: SIGSTOPped grandchildren (PostgreSQL backends, a child's own children), which
    would otherwise stay stopped forever, and the servers' temporary directories.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None

    def _send(self, line: str) -> None:
        with self._lock:
            if self._proc is None:
                self._proc = subprocess.Popen(
                    [sys.executable, "-c", _GUARDIAN_CODE],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            assert self._proc.stdin is not None
            with contextlib.suppress(OSError):
                self._proc.stdin.write(line.encode() + b"\n")
                self._proc.stdin.flush()

    def watch_pids(self, pids: Sequence[int]) -> None:
        for pid in pids:
            started = _start_time(pid)
            if started is not None:
                self._send(f"+pid {pid} {started}")

    def unwatch_pids(self, pids: Sequence[int]) -> None:
        for pid in pids:
            self._send(f"-pid {pid}")

    def watch_group(self, pgid: int) -> None:
        self._send(f"+pg {pgid}")

    def unwatch_group(self, pgid: int) -> None:
        self._send(f"-pg {pgid}")

    def watch_dir(self, path: str | Path) -> None:
        self._send(f"+dir {path}")

    def unwatch_dir(self, path: str | Path) -> None:
        self._send(f"-dir {path}")


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
        return stat[stat.rindex(b")") + 2 :].split()[19].decode()
    except (OSError, IndexError):
        return None


GUARDIAN = _Guardian()


def hard_kill(
    proc: subprocess.Popen[bytes], extra_pids: Callable[[], Sequence[int]] = list
) -> None:
    """SIGCONT then SIGKILL proc (and extra_pids), and reap it. Safe on a dead process."""
    if proc.poll() is None:
        pids = [proc.pid, *extra_pids()]
        signal_pids(pids, signal.SIGCONT)
        signal_pids(pids, signal.SIGKILL)
        proc.wait()
        wait_pids_gone(pids, timeout=5)


class ChildProcess(ClosedOnExit):
    """A child process whose merged stdout/stderr is read line by line into a queue.

    `wait_for_line` consumes lines up to and including the match; `output` keeps every line
    for assertions and failure messages. The child runs in its own session so a kill reaches
    its whole process group and a terminal Ctrl-C does not reach it twice.
    """

    def __init__(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        cwd: str | Path | None = None,
    ) -> None:
        full_env = dict(os.environ) if inherit_env else {}
        # Buffered stdout would make a Python child's lines arrive late or never.
        full_env["PYTHONUNBUFFERED"] = "1"
        full_env.update(env or {})
        self.args = list(args)
        self.output: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._paused = False
        self._proc = subprocess.Popen(
            self.args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=die_with_parent_preexec(),
        )
        REAPER.register(id(self), self.kill)
        GUARDIAN.watch_group(self._proc.pid)
        self._reader = threading.Thread(
            target=self._read, name=f"child-{self._proc.pid}-stdout", daemon=True
        )
        self._reader.start()

    @classmethod
    def python_module(
        cls,
        module: str,
        *args: str,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
    ) -> ChildProcess:
        """`python -m module args...` with this interpreter (so the venv's packages)."""
        return cls([sys.executable, "-m", module, *args], env=env, cwd=cwd)

    def _read(self) -> None:
        stdout = self._proc.stdout
        assert stdout is not None
        for raw in stdout:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            self.output.append(line)
            self._lines.put(line)
        self._lines.put(None)

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return self._proc.poll()

    def alive(self) -> bool:
        return self._proc.poll() is None

    @staticmethod
    def _matcher(predicate: LinePredicate) -> Callable[[str], bool]:
        if isinstance(predicate, str):
            return lambda line: predicate in line
        if isinstance(predicate, re.Pattern):
            pattern = predicate
            return lambda line: pattern.search(line) is not None
        return predicate

    def _timeout_error(self, predicate: LinePredicate, timeout: float, eof: bool) -> Exception:
        tail = "\n".join(self.output[-30:])
        why = f"exited with {self._proc.poll()}" if eof else f"no match within {timeout}s"
        return TimeoutError(f"{self.args!r}: {why} waiting for {predicate!r}; output tail:\n{tail}")

    def wait_for_line(self, predicate: LinePredicate, timeout: float = 10.0) -> str:
        """Block until a line matches (substring, regex or callable); raise TimeoutError."""
        match = self._matcher(predicate)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._timeout_error(predicate, timeout, eof=False)
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self._lines.put(None)  # keep EOF visible to later waiters
                raise self._timeout_error(predicate, timeout, eof=True)
            if match(line):
                return line

    async def wait_for_line_async(
        self,
        predicate: LinePredicate,
        timeout: float = 10.0,  # noqa: ASYNC109 - same signature as the sync twin
    ) -> str:
        """Like wait_for_line, but yields to the event loop (the child may need our servers)."""
        match = self._matcher(predicate)
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                if time.monotonic() >= deadline:
                    raise self._timeout_error(predicate, timeout, eof=False) from None
                await asyncio.sleep(0.01)
                continue
            if line is None:
                self._lines.put(None)
                raise self._timeout_error(predicate, timeout, eof=True)
            if match(line):
                return line

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)

    def pause(self) -> None:
        """SIGSTOP the child's process group: a hung process that keeps its sockets open."""
        self._signal_group(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        self._signal_group(signal.SIGCONT)
        self._paused = False

    def kill(self) -> int:
        """SIGKILL (kill -9) the process group and reap; returns the exit status."""
        if self._proc.poll() is None:
            self._signal_group(signal.SIGCONT)
            self._signal_group(signal.SIGKILL)
        code = self._proc.wait()
        self._finish()
        return code

    def terminate(self, timeout: float = 5.0) -> int:
        """SIGTERM, then SIGKILL if it has not exited within timeout; returns the exit status."""
        if self._proc.poll() is None:
            if self._paused:
                self.resume()
            self._signal_group(signal.SIGTERM)
            try:
                code = self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return self.kill()
            self._finish()
            return code
        return self.kill()

    def _finish(self) -> None:
        REAPER.unregister(id(self))
        GUARDIAN.unwatch_group(self._proc.pid)
        self._reader.join(timeout=2)
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def close(self) -> None:
        self.kill()
