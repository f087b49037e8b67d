"""Child-process helpers: output lines, deadlines and signals behave as promised."""

from __future__ import annotations

import signal
import sys

import pytest

from tests.support.fixtures import PythonChildFactory
from tests.support.processes import ChildProcess, free_port, pid_alive

TICKER = """
import itertools, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: (print("bye"), sys.exit(3)))
print("ready")
for i in itertools.count():
    print(f"tick {i}")
    time.sleep(0.02)
"""


def test_wait_for_line_kill_and_pause() -> None:
    with ChildProcess([sys.executable, "-c", TICKER]) as child:
        assert child.wait_for_line("ready", timeout=5) == "ready"
        child.wait_for_line(lambda line: line.startswith("tick 3"), timeout=5)
        child.pause()
        seen = len(child.output)
        with pytest.raises(TimeoutError):
            child.wait_for_line("never", timeout=0.3)
        assert len(child.output) <= seen + 1  # at most one line already in the pipe
        child.resume()
        child.wait_for_line("tick", timeout=5)
        assert child.kill() == -signal.SIGKILL
        assert not pid_alive(child.pid)


def test_terminate_is_graceful() -> None:
    with ChildProcess([sys.executable, "-c", TICKER]) as child:
        child.wait_for_line("ready", timeout=5)
        assert child.terminate() == 3
        assert "bye" in child.output


def test_exit_is_reported_while_waiting() -> None:
    with (
        ChildProcess([sys.executable, "-c", "print('only')"]) as child,
        pytest.raises(TimeoutError, match="exited"),
    ):
        child.wait_for_line("never", timeout=5)


async def test_async_wait_and_python_module_factory(python_child: PythonChildFactory) -> None:
    child = python_child("http.server", str(free_port()), "--bind", "127.0.0.1")
    line = await child.wait_for_line_async("Serving HTTP", timeout=5)
    assert "127.0.0.1" in line


def test_free_port_is_bindable() -> None:
    import socket

    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
