"""`guildkit run` as a process, without needing the bot or the dashboard to be healthy: the
lock, SIGKILL of the supervisor itself, and adopting the embedded PostgreSQL it left."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from guildkit.embedded_pg import read_postmaster
from tests.run.support import wait_until
from tests.run.system import RunningSystem


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0): it has exited all the same.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ", 1)[1][0] != "Z"


@pytest.mark.timeout(300)
def test_a_killed_run_leaves_no_children_and_the_next_run_adopts_its_database(
    data_dir: Path,
) -> None:
    system = RunningSystem(data_dir)
    try:
        system.process.wait_for_line('"started sandbox"', timeout=120)
        sandbox = system.child_pid("sandbox")
        assert sandbox is not None
        postmaster = read_postmaster(data_dir / "postgres")
        assert postmaster is not None

        # A second run refuses while the first holds the data directory.
        refused = system.guildkit("run", check=False)
        assert refused.returncode == 1
        assert "already running" in refused.stderr
        assert refused.stderr.count("\n") == 1, "one line, no traceback"

        system.process.kill()  # SIGKILL: no chance to clean up
        wait_until(lambda: not _alive(sandbox), 10, "the orphaned sandbox to exit")
        # PostgreSQL is never killed with its user: it stays, consistent, for the next one.
        assert read_postmaster(data_dir / "postgres") == postmaster

        system.process = system.spawn()
        system.process.wait_for_line('"started sandbox"', timeout=120)
        assert not any("initialising embedded" in line for line in system.process.output)
        assert not any("starting embedded" in line for line in system.process.output)
        assert system.stop(signal.SIGTERM) == 0
        assert read_postmaster(data_dir / "postgres") is None
    finally:
        system.close()
