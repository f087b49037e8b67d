"""Logging for the bot process: one line per event, with the logger that emitted it."""

from __future__ import annotations

import logging


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    # discord.py's HTTP and gateway chatter is DEBUG-worthy; its INFO lines (connect, resume)
    # are the ones an operator wants.
    logging.getLogger("discord.http").setLevel(logging.WARNING)
    logging.getLogger("discord.client").addFilter(_no_voice_warnings)


def _no_voice_warnings(record: logging.LogRecord) -> bool:
    # The bot never joins voice; "PyNaCl is not installed" would only mislead operators.
    return "voice will NOT be supported" not in record.getMessage()
