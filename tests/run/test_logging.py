"""Structured logs: one JSON object per line off a terminal, readable text on one."""

from __future__ import annotations

import io
import json
import logging

import pytest

from guildkit.logging_setup import setup_logging, wants_json


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_root_logger() -> object:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield None
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_off_a_terminal_one_object_per_event(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GUILDKIT_LOG_FORMAT", raising=False)
    out = io.StringIO()
    setup_logging("bot", stream=out)
    log = logging.getLogger("guildkit.test")
    log.info("applied change", extra={"guild_id": "1", "version": 3})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed\nover two lines")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["event"] == "applied change"
    assert first["process"] == "bot"
    assert first["level"] == "info"
    assert (first["guild_id"], first["version"]) == ("1", 3)
    assert second["level"] == "error"
    assert "ValueError: boom" in second["exc"]


def test_text_on_a_terminal_and_the_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GUILDKIT_LOG_FORMAT", raising=False)
    assert not wants_json(_Tty())
    assert wants_json(io.StringIO())
    monkeypatch.setenv("GUILDKIT_LOG_FORMAT", "text")
    out = io.StringIO()
    setup_logging("run", stream=out)
    logging.getLogger("guildkit.test").warning("hello", extra={"child": "bot"})
    line = out.getvalue().strip()
    assert "WARNING" in line and "guildkit.test: hello" in line and line.endswith("child=bot")
