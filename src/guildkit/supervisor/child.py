"""One supervised child process: start, stream its output, restart it when it dies."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx

from guildkit.supervisor.backoff import Backoff
from guildkit.supervisor.output import OutputSink

log = logging.getLogger("guildkit.supervisor")

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Runs in the child between fork and exec. The child leads its own process group (so a
    # terminal's Ctrl-C reaches only the supervisor, which stops children in order); in
    # exchange the kernel must kill it if the supervisor itself is killed with SIGKILL.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


@dataclass
class ChildSpec:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    # Polled until it answers 200 before the next child starts (start order matters: the bot
    # needs the sandbox up to connect).
    ready_url: str | None = None
    ready_timeout: float = 60.0
    # Whether later children wait for this one to be ready before they start.
    gates_next: bool = False
    stop_timeout: float = 10.0
    backoff: Backoff = field(default_factory=Backoff)


class SupervisedChild:
    def __init__(self, spec: ChildSpec, output: OutputSink) -> None:
        self.spec = spec
        self.output = output
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.exits: list[int] = []
        self._stopping = asyncio.Event()
        self._started = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        output.register(spec.name)

    @property
    def pid(self) -> int | None:
        process = self.process
        return process.pid if process is not None and process.returncode is None else None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"supervise-{self.spec.name}")

    async def _spawn(self) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *self.spec.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, **self.spec.env},
            start_new_session=True,
            preexec_fn=_die_with_parent,
            limit=1 << 20,
        )

    async def _pump(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while True:
            try:
                raw = await process.stdout.readline()
            except ValueError:
                # A line over the limit: take what is buffered rather than lose the stream.
                raw = await process.stdout.read(1 << 20)
            if not raw:
                return
            self.output.line(self.spec.name, raw.decode(errors="replace"))

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            began = time.monotonic()
            try:
                process = await self._spawn()
            except OSError as exc:
                log.error(
                    "cannot start %s: %s", self.spec.name, exc, extra={"child": self.spec.name}
                )
                code = -1
            else:
                self.process = process
                self.starts += 1
                self._started.set()
                log.info(
                    "started %s",
                    self.spec.name,
                    extra={"child": self.spec.name, "pid": process.pid, "start": self.starts},
                )
                pump = asyncio.create_task(self._pump(process))
                code = await process.wait()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pump, 5)
            self.exits.append(code)
            if self._stopping.is_set():
                log.info(
                    "%s stopped", self.spec.name, extra={"child": self.spec.name, "code": code}
                )
                return
            delay = self.spec.backoff.delay(time.monotonic() - began)
            log.warning(
                "%s exited with %s; restarting in %.1fs",
                self.spec.name,
                _describe(code),
                delay,
                extra={"child": self.spec.name, "code": code, "restart_in": delay},
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    async def wait_ready(self) -> bool:
        """Wait for the child's ready URL (or just its start); False on timeout."""
        deadline = time.monotonic() + self.spec.ready_timeout
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._started.wait(), self.spec.ready_timeout)
        url = self.spec.ready_url
        if url is None:
            return self._started.is_set()
        async with httpx.AsyncClient(timeout=1.0) as http:
            while time.monotonic() < deadline and not self._stopping.is_set():
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(url)).status_code == 200:
                        return True
                await asyncio.sleep(0.1)
        return False

    async def stop(self) -> None:
        """SIGTERM the child's process group, SIGKILL it after `stop_timeout`."""
        self._stopping.set()
        process = self.process
        if process is not None and process.returncode is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), self.spec.stop_timeout)
            except TimeoutError:
                log.warning(
                    "%s ignored SIGTERM for %.0fs; killing it",
                    self.spec.name,
                    self.spec.stop_timeout,
                    extra={"child": self.spec.name},
                )
                _signal_group(process.pid, signal.SIGKILL)
                await process.wait()
        if self._task is not None:
            await self._task


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def _describe(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
    return f"code {code}"
