"""Structured logging for every guildkit process: one line per event.

A terminal gets readable text; anything else (a pipe to `guildkit run`, systemd's journal, PM2,
a container log driver) gets one JSON object per line. GUILDKIT_LOG_FORMAT=json|text overrides
the guess, which is how `guildkit run` keeps its children's format in step with its own output.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
from typing import Any, TextIO

LOG_FORMAT_ENV = "GUILDKIT_LOG_FORMAT"
LOG_LEVEL_ENV = "GUILDKIT_LOG_LEVEL"

# LogRecord's own attributes; anything else on a record came from `extra=` and is logged too.
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    def __init__(self, process_name: str) -> None:
        super().__init__()
        self.process_name = process_name

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "process": self.process_name,
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {
            k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")
        }
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return line


def wants_json(stream: TextIO) -> bool:
    chosen = os.environ.get(LOG_FORMAT_ENV, "").strip().lower()
    if chosen in ("json", "text"):
        return chosen == "json"
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):
        return True


def setup_logging(process_name: str, *, stream: TextIO | None = None) -> None:
    """Route every logger (ours, uvicorn's, discord.py's) through one stdout handler."""
    out = stream or sys.stdout
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter(process_name) if wants_json(out) else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(os.environ.get(LOG_LEVEL_ENV, "INFO").upper())
    # Libraries that install their own handlers would print every event twice.
    # Request-by-request client logs drown the events that matter.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "discord", "aiohttp.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
