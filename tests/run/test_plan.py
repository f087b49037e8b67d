"""What `guildkit run` decides to start, and the summary it prints, from the configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from guildkit.cli.run import plan, print_summary, summary
from guildkit.config import load_config
from guildkit.sandbox import DEFAULT_BOT_TOKEN


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "DISCORD_TOKEN", "GUILDKIT_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_offline_plan_adds_the_sandbox_first_and_points_the_children_at_it(
    tmp_path: Path,
) -> None:
    config = load_config(
        GUILDKIT_DATA_DIR=str(tmp_path), GUILDKIT_SANDBOX_PORT=18999, GUILDKIT_PORT=18998
    )
    p = plan(config, "postgresql://postgres@/guildkit?host=/x", json_logs=True)
    assert [c.name for c in p.children] == ["sandbox", "bot", "dashboard"]
    assert p.children[0].gates_next
    env = p.children[1].env
    assert env["DISCORD_API_BASE"] == "http://127.0.0.1:18999/api/v10"
    assert env["DISCORD_TOKEN"] == DEFAULT_BOT_TOKEN
    assert env["DATABASE_URL"] == "postgresql://postgres@/guildkit?host=/x"
    assert env["GUILDKIT_LOG_FORMAT"] == "json"
    assert "REDIS_URL" not in env
    # One generated secret, kept in the data directory, so sessions survive child restarts.
    assert env["GUILDKIT_SECRET_KEY"] == (tmp_path / "secret-key").read_text().strip()
    assert (tmp_path / "secret-key").stat().st_mode & 0o077 == 0
    again = plan(config, "postgresql://postgres@/guildkit?host=/x", json_logs=False)
    assert again.children[1].env["GUILDKIT_SECRET_KEY"] == env["GUILDKIT_SECRET_KEY"]
    assert p.children[2].ready_url == "http://127.0.0.1:18998/healthz"

    facts = summary(p)
    assert facts["sandbox_chat"] == "http://127.0.0.1:18999/chat"
    assert facts["postgresql"] == f"embedded, in {tmp_path.resolve() / 'postgres'}"
    assert facts["redis"].startswith("none")


def test_with_real_services_no_sandbox_and_no_secrets_in_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_config(
        GUILDKIT_DATA_DIR=str(tmp_path),
        DATABASE_URL="postgresql://gk:s3cret@db.internal:5432/guildkit",
        REDIS_URL="redis://:hunter2@cache.internal:6379/0",
        DISCORD_TOKEN="real-token",
        GUILDKIT_HOST="0.0.0.0",
    )
    p = plan(config, config.effective_database_url, json_logs=False)
    assert [c.name for c in p.children] == ["bot", "dashboard"]
    assert "DISCORD_API_BASE" not in p.children[0].env
    print_summary(p, json_logs=False, not_ready=["bot"])
    out = capsys.readouterr().out
    assert "s3cret" not in out and "hunter2" not in out
    assert "external, postgresql://db.internal:5432/guildkit" in out
    assert "external, redis://cache.internal:6379/0" in out
    assert "real Discord" in out
    assert "http://127.0.0.1:8080" in out, "a wildcard bind is shown as a browsable address"
    assert "not ready yet: bot" in out
    assert out.count("\n") < 15, "one short summary"
