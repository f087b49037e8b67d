"""The dashboard's /metrics shows its side of the settings layer: the Redis fast path."""

from __future__ import annotations

import httpx

from tests.dashboard.conftest import Scene, login


def _sample(text: str, prefix: str) -> float:
    (line,) = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(line.rsplit(" ", 1)[1])


async def test_metrics_count_invalidations_published_and_show_the_breaker(
    client: httpx.AsyncClient, scene: Scene
) -> None:
    before = (await client.get("/metrics")).text
    assert _sample(before, 'guildkit_dashboard_redis_breaker_state{state="closed"}') == 1.0
    published_before = _sample(
        before, 'guildkit_dashboard_invalidations_published_total{outcome="ok"}'
    )
    csrf = await login(client, scene.owner)
    saved = await client.patch(
        f"/api/guilds/{scene.guild}/settings",
        json={"prefix": "?"},
        headers={"X-CSRF-Token": csrf, "Content-Type": "application/merge-patch+json"},
    )
    assert saved.status_code == 200, saved.text
    after = (await client.get("/metrics")).text
    assert (
        _sample(after, 'guildkit_dashboard_invalidations_published_total{outcome="ok"}')
        == published_before + 1
    )
    assert _sample(after, 'guildkit_dashboard_invalidations_published_total{outcome="failed"}') == 0
