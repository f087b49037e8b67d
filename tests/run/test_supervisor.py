"""The supervisor with stand-in children: restarts with back-off, ordered start, clean stop."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from guildkit.supervisor import Backoff, ChildSpec, OutputSink, RunLock, RunLockHeld, Supervisor

PY = sys.executable


def _py(code: str) -> list[str]:
    return [PY, "-c", code]


async def _until(predicate: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_backoff_grows_to_the_cap_and_forgives_a_healthy_run() -> None:
    backoff = Backoff(initial=0.5, factor=2, maximum=3, healthy_after=10)
    assert [backoff.delay(0.1) for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff.delay(60) == 0.5


def test_text_output_is_prefixed_with_the_child_name() -> None:
    stream = io.StringIO()
    sink = OutputSink(json_mode=False, stream=stream)
    sink.register("dashboard")
    sink.line("bot", "hello\n")
    assert stream.getvalue() == "bot       | hello\n"


def test_json_output_gets_the_process_field_and_stays_one_object_per_line() -> None:
    stream = io.StringIO()
    sink = OutputSink(json_mode=True, stream=stream)
    sink.line("bot", '{"event": "ready", "level": "info"}')
    sink.line("bot", "a plain line")
    sink.line("bot", '{"event": "x", "process": "bot-shard-0"}')
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines == [
        {"event": "ready", "level": "info", "process": "bot"},
        {"process": "bot", "level": "info", "event": "a plain line"},
        {"event": "x", "process": "bot-shard-0"},
    ]


async def test_a_crashing_child_is_restarted_with_growing_delays() -> None:
    stream = io.StringIO()
    spec = ChildSpec(
        "crasher",
        _py("import sys; print('up', flush=True); sys.exit(3)"),
        backoff=Backoff(initial=0.1, factor=2, maximum=1, healthy_after=30),
    )
    supervisor = Supervisor([spec], OutputSink(json_mode=False, stream=stream))
    child = supervisor.child("crasher")
    began = time.monotonic()
    await supervisor.start()
    try:
        await _until(lambda: child.starts >= 4, 20, "four starts")
    finally:
        await supervisor.stop()
    # Three restarts after 0.1 + 0.2 + 0.4 s of back-off, at the least.
    assert time.monotonic() - began >= 0.7
    assert child.exits[:3] == [3, 3, 3]
    assert stream.getvalue().count("crasher   | up") >= 3


async def test_kill_9_of_a_child_restarts_it() -> None:
    spec = ChildSpec(
        "sleeper",
        _py("import time; print('ready', flush=True); time.sleep(60)"),
        backoff=Backoff(initial=0.1),
    )
    supervisor = Supervisor([spec], OutputSink(json_mode=False, stream=io.StringIO()))
    child = supervisor.child("sleeper")
    await supervisor.start()
    try:
        first = child.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        await _until(lambda: child.starts == 2 and child.pid not in (None, first), 10, "restart")
        assert child.exits == [-signal.SIGKILL]
    finally:
        await supervisor.stop()
    assert child.pid is None


async def test_stop_is_in_reverse_order_and_kills_a_child_that_ignores_sigterm(
    tmp_path: Path,
) -> None:
    order = tmp_path / "order"
    polite = (
        "import signal, sys, time\n"
        "def bye(*_):\n"
        f"    open({str(order)!r}, 'a').write(sys.argv[1] + '\\n'); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    specs = [
        ChildSpec("first", [*_py(polite), "first"]),
        ChildSpec("second", [*_py(polite), "second"]),
        ChildSpec("stubborn", _py(stubborn), stop_timeout=0.5),
    ]
    supervisor = Supervisor(specs, OutputSink(json_mode=False, stream=io.StringIO()))
    await supervisor.start()
    # The handlers must be installed before SIGTERM arrives, or Python dies of it silently.
    await asyncio.sleep(0.5)
    pids = [c.pid for c in supervisor.children]
    began = time.monotonic()
    await supervisor.stop()
    assert time.monotonic() - began < 8
    assert order.read_text().split() == ["second", "first"]
    assert supervisor.child("stubborn").exits == [-signal.SIGKILL]
    assert not any(_alive(pid) for pid in pids if pid is not None)


async def test_a_gating_child_is_ready_before_the_next_one_starts(tmp_path: Path) -> None:
    marker = tmp_path / "gate-open"
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    # The gate answers its ready URL only 0.5 s after it starts and after it made the marker.
    gate_argv = _py(
        "import http.server, time, pathlib\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200); self.end_headers()\n"
        "time.sleep(0.5)\n"
        f"pathlib.Path({str(marker)!r}).touch()\n"
        f"http.server.HTTPServer(('127.0.0.1', {port}), H).serve_forever()\n"
    )
    gate = ChildSpec("gate", gate_argv, ready_url=f"http://127.0.0.1:{port}/", gates_next=True)
    after = ChildSpec(
        "after",
        _py(
            f"import pathlib, time; print(pathlib.Path({str(marker)!r}).exists(), flush=True); "
            "time.sleep(60)"
        ),
    )
    stream = io.StringIO()
    supervisor = Supervisor([gate, after], OutputSink(json_mode=False, stream=stream))
    try:
        not_ready = await supervisor.start()
        assert not_ready == []
        await _until(lambda: "after" in stream.getvalue(), 10, "output of `after`")
        assert "after     | True" in stream.getvalue()
    finally:
        await supervisor.stop()


async def test_stop_request_interrupts_a_slow_start() -> None:
    never = ChildSpec(
        "never-ready",
        _py("import time; time.sleep(60)"),
        ready_url="http://127.0.0.1:9/",
        ready_timeout=60,
        gates_next=True,
    )
    supervisor = Supervisor([never], OutputSink(json_mode=False, stream=io.StringIO()))
    asyncio.get_running_loop().call_later(0.3, supervisor.request_stop)
    began = time.monotonic()
    await supervisor.start()
    await supervisor.stop()
    assert time.monotonic() - began < 5


def test_run_lock_refuses_a_second_holder_and_names_the_first(tmp_path: Path) -> None:
    first = RunLock(tmp_path / "run.lock")
    first.acquire()
    try:
        with pytest.raises(RunLockHeld) as held:
            RunLock(tmp_path / "run.lock").acquire()
        assert held.value.pid == os.getpid()
    finally:
        first.release()
    again = RunLock(tmp_path / "run.lock")
    again.acquire()
    again.release()


def test_output_to_a_closed_reader_is_dropped_not_fatal() -> None:
    class Closed(io.StringIO):
        def write(self, _: str) -> int:
            raise BrokenPipeError

    sink = OutputSink(json_mode=True, stream=Closed())
    sink.line("bot", "still draining")
