"""Helpers for the `guildkit run` tests: scratch data directories, clean environments, waits."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from guildkit.embedded_pg import read_postmaster
from tests.support.processes import free_port, scratch_root

T = TypeVar("T")

# Variables that would point guildkit at someone else's services or at real Discord.
_FOREIGN = (
    "DATABASE_URL",
    "REDIS_URL",
    "DISCORD_TOKEN",
    "DISCORD_CLIENT_ID",
    "DISCORD_CLIENT_SECRET",
    "DISCORD_API_BASE",
    "GUILDKIT_SECRET_KEY",
    "GUILDKIT_PUBLIC_URL",
    "GUILDKIT_LOG_FORMAT",
)


def clean_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The machine's environment minus guildkit's service settings, plus a private data dir and
    free ports: what a newcomer has, with nothing that could collide with another run."""
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN}
    env |= {
        "GUILDKIT_DATA_DIR": str(data_dir),
        "GUILDKIT_PORT": str(free_port()),
        "GUILDKIT_SANDBOX_PORT": str(free_port()),
        "GUILDKIT_BOT_METRICS_PORT": str(free_port()),
        "PYTHONUNBUFFERED": "1",
    }
    env |= extra
    return env


def stop_leftover_postgres(data_dir: Path, timeout: float = 30.0) -> None:
    """Fast-shutdown an embedded server a failed test left running."""
    status = read_postmaster(data_dir / "postgres")
    if status is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(status.pid, signal.SIGINT)
    deadline = time.monotonic() + timeout
    while read_postmaster(data_dir / "postgres") is not None:
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(status.pid, signal.SIGKILL)
            return
        time.sleep(0.05)


@contextlib.contextmanager
def scratch_data_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: its 0700 parents would keep the server's system user out.
    base = Path(tempfile.mkdtemp(prefix="gk-run-", dir=scratch_root()))
    base.chmod(0o755)
    data_dir = base / "data"
    try:
        yield data_dir
    finally:
        stop_leftover_postgres(data_dir)
        shutil.rmtree(base, ignore_errors=True)


def wait_until(check: Callable[[], T | None], within: float, what: str, step: float = 0.1) -> T:
    """Poll `check` until it returns something truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    last_error: Exception | None = None
    while True:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:
            last_error = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}: {last_error!r}")
        time.sleep(step)
