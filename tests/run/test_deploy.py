"""The deployment files parse and agree with the CLI (Docker is not run here)."""

from __future__ import annotations

import configparser
import json
import re
from pathlib import Path
from typing import Any

import yaml

from guildkit.cli.main import app

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _commands() -> set[str]:
    return {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((DEPLOY / "systemd" / name).read_text())
    return parser


def test_docker_compose_has_postgres_redis_migrate_bot_and_dashboard() -> None:
    compose: dict[str, Any] = yaml.safe_load((DEPLOY / "docker" / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "dashboard", "bot"}
    assert services["migrate"]["command"] == ["migrate"]
    for name in ("bot", "dashboard"):
        service = services[name]
        assert service["command"] == [name]
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert service["environment"]["DATABASE_URL"].startswith("postgresql://")
        assert service["environment"]["REDIS_URL"].startswith("redis://redis:")
        assert service["build"]["dockerfile"] == "deploy/docker/Dockerfile"
    assert "pgdata" in compose["volumes"]
    assert (DEPLOY / "docker" / "Dockerfile").read_text().count('ENTRYPOINT ["guildkit"]') == 1


def test_systemd_units_migrate_before_the_dashboard_and_order_the_bot_after_it() -> None:
    dashboard = _unit("guildkit-dashboard.service")
    bot = _unit("guildkit-bot.service")
    assert dashboard["Service"]["ExecStartPre"].endswith("guildkit migrate")
    assert dashboard["Service"]["ExecStart"].endswith("guildkit dashboard")
    assert bot["Service"]["ExecStart"].endswith("guildkit bot")
    assert "guildkit-dashboard.service" in bot["Unit"]["After"].split()
    for unit in (dashboard, bot):
        assert unit["Service"]["Restart"] == "on-failure"
        assert unit["Service"]["EnvironmentFile"] == "/etc/guildkit/guildkit.env"
        assert unit["Install"]["WantedBy"] == "guildkit.target"
    target = _unit("guildkit.target")
    assert set(target["Unit"]["Wants"].split()) == {
        "guildkit-dashboard.service",
        "guildkit-bot.service",
    }


def test_pm2_ecosystem_runs_the_cli_from_the_venv() -> None:
    ecosystem = json.loads((DEPLOY / "pm2" / "ecosystem.json").read_text())
    apps = {a["name"]: a for a in ecosystem["apps"]}
    assert set(apps) == {"guildkit-dashboard", "guildkit-bot"}
    for name, entry in apps.items():
        assert entry["interpreter"] == "none"
        assert entry["script"].endswith("/.venv/bin/guildkit")
        assert entry["args"] == name.removeprefix("guildkit-")
        assert entry["autorestart"] is True


def test_the_cli_has_the_commands_deploy_and_make_run_rely_on() -> None:
    # `bot` and `dashboard` arrive from their own branches; these must exist here.
    assert {"migrate", "run", "doctor", "sandbox"} <= _commands()


def test_readme_has_a_section_per_way_of_running() -> None:
    text = (DEPLOY / "README.md").read_text()
    headings = set(re.findall(r"^## (.+)$", text, re.MULTILINE))
    assert {
        "On one machine: `make run`",
        "systemd",
        "PM2",
        "Docker Compose",
    } <= headings


def test_make_run_installs_then_runs() -> None:
    makefile = (DEPLOY.parent / "Makefile").read_text()
    match = re.search(r"^run: (.*)\n\t(.*)$", makefile, re.MULTILINE)
    assert match is not None
    assert "install" in match.group(1).split()
    assert match.group(2).strip() == "$(BIN)/guildkit run"
