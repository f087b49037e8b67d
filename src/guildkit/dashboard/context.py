"""The dashboard's dependencies, built once by the composition root and handed to create_app."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from guildkit.dashboard.discord_api import DiscordClient
from guildkit.dashboard.metrics import DashboardMetrics
from guildkit.dashboard.service import SettingsService
from guildkit.dashboard.sessions import SessionStore
from guildkit.settings.redis_cache import RedisSettingsCache
from guildkit.settings.store import SettingsStore
from guildkit.settings.writer import SettingsWriter


@dataclass(frozen=True, slots=True)
class DashboardOptions:
    public_url: str | None = None
    session_max_age_seconds: int = 8 * 3600
    # The largest valid settings document (50 custom commands of 2000 characters, 200 blocked
    # words, ...) is about 120 KB, more once form-encoded; anything far beyond is refused unread.
    body_limit_bytes: int = 256 * 1024
    # Bot processes heartbeat every 2 s; one silent for 15 s is gone (as `guildkit doctor` says).
    heartbeat_window_seconds: float = 15.0
    # Checks on writes use the user's guild list only if it is at most this old (DESIGN §7:
    # "re-checked on every write").
    write_permission_max_age_seconds: float = 10.0
    htmx_path: Path | None = None
    # Unsafe requests (and /auth/) per user, or per client address without a session: a person
    # saving forms never comes near this; a script hammering the API does (rate_limit.py).
    write_rate_per_second: float = 10.0
    write_burst: int = 20

    @property
    def cookie_secure(self) -> bool:
        return (self.public_url or "").lower().startswith("https://")


@dataclass(slots=True)
class Dashboard:
    store: SettingsStore
    writer: SettingsWriter
    discord: DiscordClient
    sessions: SessionStore
    options: DashboardOptions = field(default_factory=DashboardOptions)
    redis_cache: RedisSettingsCache | None = None
    metrics: DashboardMetrics = field(default_factory=DashboardMetrics)
    service: SettingsService = field(init=False)

    def __post_init__(self) -> None:
        self.metrics.watch_settings_layer(self.writer.publisher, self.redis_cache)
        self.service = SettingsService(
            self.store,
            self.writer,
            self.discord,
            self.metrics,
            heartbeat_window_seconds=self.options.heartbeat_window_seconds,
        )
