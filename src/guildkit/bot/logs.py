"""Logging for the bot process: one line per event, with the logger that emitted it."""

from __future__ import annotations

import logging

from guildkit.logging_setup import setup_logging


def configure_logging() -> None:
    # One line per event; JSON when not on a terminal (guildkit run, systemd, PM2).
    setup_logging("bot")
    # discord.py's HTTP and gateway chatter is DEBUG-worthy; its INFO lines (connect, resume)
    # are the ones an operator wants.
    logging.getLogger("discord.http").setLevel(logging.WARNING)
    logging.getLogger("discord.client").addFilter(_no_voice_warnings)


def _no_voice_warnings(record: logging.LogRecord) -> bool:
    # The bot never joins voice; "PyNaCl is not installed" would only mislead operators.
    return "voice will NOT be supported" not in record.getMessage()
