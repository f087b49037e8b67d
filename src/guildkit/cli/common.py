"""Helpers every sub-command shares: loading configuration and failing with one clear line."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

import typer

from guildkit.config import ConfigError, GuildkitConfig, load_config

T = TypeVar("T")


def fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def config_or_exit() -> GuildkitConfig:
    try:
        return load_config()
    except ConfigError as exc:
        fail(str(exc), 2)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)
