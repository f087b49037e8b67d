"""`guildkit doctor`: check every dependency and say what is wrong and how to fix it."""

from __future__ import annotations

import typer

from guildkit.cli.common import config_or_exit, run_async
from guildkit.doctor import Status, run_checks

_MARK = {
    Status.OK: ("ok  ", typer.colors.GREEN),
    Status.WARN: ("warn", typer.colors.YELLOW),
    Status.FAIL: ("FAIL", typer.colors.RED),
}


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)


def doctor() -> None:
    """Check PostgreSQL, the schema, Redis, Discord settings and running bot processes."""
    checks = run_async(run_checks(config_or_exit()))
    for check in checks:
        label, colour = _MARK[check.status]
        typer.secho(f"[{label}] {check.name}: {check.detail}", fg=colour)
        if check.fix and check.status is not Status.OK:
            typer.echo(f"       fix: {check.fix}")
    failed = [c for c in checks if c.status is Status.FAIL]
    if failed:
        typer.secho(f"{len(failed)} problem(s) must be fixed", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    typer.echo("guildkit can run")
