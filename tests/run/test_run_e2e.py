"""`guildkit run` from an empty data directory, with nothing but free ports configured: the
whole system comes up, answers, follows settings changes, survives a crashed child, refuses a
second copy, stops cleanly and keeps its data for the next run."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from guildkit.embedded_pg import read_postmaster
from tests.run.support import wait_until
from tests.run.system import RunningSystem, has_bot_and_dashboard
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.skipif(
    not has_bot_and_dashboard(), reason="`guildkit bot` and `guildkit dashboard` not merged yet"
)

STALENESS_BOUND = 5.0


@pytest.fixture
def system(data_dir: Path) -> Iterator[RunningSystem]:
    running = RunningSystem(data_dir)
    try:
        yield running
    finally:
        running.close()


@pytest.mark.timeout(600)
def test_run_from_nothing_end_to_end(system: RunningSystem, data_dir: Path) -> None:
    summary = system.wait_running()
    assert summary["postgresql"].startswith("embedded")
    assert summary["redis"].startswith("none")
    assert summary["sandbox_chat"] == f"{system.sandbox_url}/chat"
    assert summary["not_ready"] == []

    assert system.http.get(f"{system.dashboard_url}/healthz").status_code == 200
    assert system.http.get(f"{system.sandbox_url}/chat").status_code == 200
    demo = system.demo()
    system.ping_until_pong(demo, "!ping", within=30)

    # A settings change (same store as the dashboard) reaches the bot within the bound.
    system.guildkit("settings", "set", demo.guild_id, "prefix=?")
    took = system.ping_until_pong(demo, "?ping", within=STALENESS_BOUND + 1)
    assert took <= STALENESS_BOUND + 1

    # The same through the dashboard's API, as an admin would: logged in via the stand-in.
    dashboard, csrf = system.dashboard_session(demo)
    try:
        patched = dashboard.patch(
            f"{system.dashboard_url}/api/guilds/{demo.guild_id}/settings",
            json={"prefix": "?", "welcome": {"enabled": True}},
            headers={"X-CSRF-Token": csrf},
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["version"] == 2
        system.ping_until_pong(demo, "?ping", within=STALENESS_BOUND + 1)
        wait_until(
            lambda: dashboard.get(f"{system.dashboard_url}/api/guilds/{demo.guild_id}/sync").json()[
                "live"
            ],
            STALENESS_BOUND,
            "the dashboard to report the change live",
        )
    finally:
        dashboard.close()

    # Both processes export what an operator watches: the bot its reads per tier, hit ratios,
    # signals per path and the commit-to-applied lag of the two edits; the dashboard its
    # after-commit invalidations (none reach Redis here: there is none).
    bot_metrics = system.http.get(
        f"http://127.0.0.1:{system.env['GUILDKIT_BOT_METRICS_PORT']}/metrics"
    ).text
    lag_counts = [
        float(line.rsplit(" ", 1)[1])
        for line in bot_metrics.splitlines()
        if line.startswith("guildkit_bot_settings_commit_to_applied_seconds_count")
    ]
    assert sum(lag_counts) == 2, bot_metrics
    assert 'guildkit_bot_settings_hit_ratio{tier="l1"}' in bot_metrics
    assert "guildkit_bot_applied_change_seq 2.0" in bot_metrics
    dashboard_metrics = system.http.get(f"{system.dashboard_url}/metrics").text
    assert 'guildkit_dashboard_settings_writes_total{outcome="ok"} 1.0' in dashboard_metrics

    # doctor, beside the running system, lists the bot with the change it has applied.
    doctor = system.guildkit("doctor", check=False)
    bots = [line for line in doctor.stdout.splitlines() if "applied change" in line]
    assert len(bots) == 1, doctor.stdout
    wait_until(
        lambda: "(up to date)" in system.guildkit("doctor", check=False).stdout,
        STALENESS_BOUND,
        "doctor to show the bot up to date",
    )

    # A second `guildkit run` on the same data directory refuses, naming the holder.
    second = system.guildkit("run", check=False)
    assert second.returncode != 0
    assert "already running" in second.stderr
    assert str(system.process.pid) in second.stderr

    # kill -9 of the bot: the supervisor starts another, which still has the settings.
    first_bot = system.child_pid("bot")
    assert first_bot is not None
    os.kill(first_bot, signal.SIGKILL)
    wait_until(lambda: system.child_pid("bot", start=2), 30, "the bot's restart")
    system.ping_until_pong(demo, "?ping", within=60)

    # Stop everything: children first, then a clean PostgreSQL shutdown.
    assert system.stop() == 0
    assert read_postmaster(data_dir / "postgres") is None
    assert "database system is shut down" in (data_dir / "postgres.log").read_text()
    assert any('"embedded PostgreSQL stopped"' in line for line in system.process.output)

    # Everything persists into the next run of the same data directory.
    system.process = system.spawn()
    system.wait_running()
    shown = json.loads(system.guildkit("settings", "show", demo.guild_id, "--json").stdout)
    assert shown["settings"]["prefix"] == "?"
    assert shown["version"] == 2
    assert shown["settings"]["welcome"]["enabled"] is True
    history = json.loads(system.guildkit("settings", "history", demo.guild_id, "--json").stdout)
    assert [h["version"] for h in history] == [2, 1]
    assert history[1]["actor"] == "cli"
    assert history[0]["actor"] != "cli"
    # The demo guild's ids are deterministic, so the bot applies the stored settings to it.
    assert system.demo() == demo
    system.ping_until_pong(demo, "?ping", within=30)
    assert system.stop() == 0


@pytest.mark.timeout(400)
def test_a_private_redis_that_dies_does_not_stop_the_system(
    data_dir: Path, redis_server: RedisServer
) -> None:
    system = RunningSystem(data_dir, REDIS_URL=redis_server.url)
    try:
        summary = system.wait_running()
        assert summary["redis"].startswith("external")
        demo = system.demo()
        system.ping_until_pong(demo, "!ping", within=30)
        system.guildkit("settings", "set", demo.guild_id, "prefix=$")
        system.ping_until_pong(demo, "$ping", within=STALENESS_BOUND + 1)

        redis_server.kill()
        began = time.monotonic()
        system.guildkit("settings", "set", demo.guild_id, "prefix=%")
        system.ping_until_pong(demo, "%ping", within=STALENESS_BOUND + 1)
        assert time.monotonic() - began <= STALENESS_BOUND + 3
        assert system.http.get(f"{system.dashboard_url}/healthz").status_code == 200
        # Ctrl-C in a terminal, and a closed terminal, stop it as cleanly as SIGTERM.
        assert system.stop(signal.SIGINT) == 0
        assert read_postmaster(data_dir / "postgres") is None
        system.process = system.spawn()
        system.wait_running()
        system.ping_until_pong(demo, "%ping", within=30)
        assert system.stop(signal.SIGHUP) == 0
        assert read_postmaster(data_dir / "postgres") is None
    finally:
        system.close()
