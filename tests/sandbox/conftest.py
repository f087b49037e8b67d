"""Fixtures: a sandbox on a free port per test, and a control-API client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from guildkit.sandbox import RunningSandbox, run_sandbox
from guildkit.sandbox.client import SandboxClient


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    async with run_sandbox(port=0) as running:
        yield running


@pytest.fixture
async def control(sandbox: RunningSandbox) -> AsyncIterator[SandboxClient]:
    async with SandboxClient(sandbox.base_url) as client:
        yield client
