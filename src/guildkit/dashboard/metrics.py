"""Prometheus metrics, in a registry per app so several apps (tests) never collide."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from guildkit.settings.breaker import BreakerState
from guildkit.settings.publisher import InvalidationPublisher
from guildkit.settings.redis_cache import RedisSettingsCache


class DashboardMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "guildkit_dashboard_requests_total",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "guildkit_dashboard_request_seconds",
            "HTTP request latency by method and route template",
            ["method", "route"],
            registry=self.registry,
        )
        self.writes = Counter(
            "guildkit_dashboard_settings_writes_total",
            "Settings writes by outcome (ok, unchanged, invalid, conflict, unavailable)",
            ["outcome"],
            registry=self.registry,
        )
        self.discord_errors = Counter(
            "guildkit_dashboard_discord_errors_total",
            "Discord calls that failed, by kind",
            ["kind"],
            registry=self.registry,
        )

    def watch_settings_layer(
        self, publisher: InvalidationPublisher, redis_cache: RedisSettingsCache | None
    ) -> None:
        self.registry.register(_SettingsLayerCollector(publisher, redis_cache))


class _SettingsLayerCollector(Collector):
    """The write side's Redis fast path, read from its plain counters at scrape time."""

    def __init__(
        self, publisher: InvalidationPublisher, redis_cache: RedisSettingsCache | None
    ) -> None:
        self._publisher = publisher
        self._redis_cache = redis_cache

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        published = CounterMetricFamily(
            "guildkit_dashboard_invalidations_published",
            "After-commit Redis invalidations (tombstone + PUBLISH) by outcome; a failed one is "
            "delivered by NOTIFY or catch-up instead",
            labels=["outcome"],
        )
        published.add_metric(["ok"], self._publisher.published)
        published.add_metric(["failed"], self._publisher.failures)
        yield published
        breaker = GaugeMetricFamily(
            "guildkit_dashboard_redis_breaker_state",
            "Redis circuit breaker state (1 for the current state; none without Redis)",
            labels=["state"],
        )
        if self._redis_cache is not None:
            current = self._redis_cache.breaker.state
            for state in BreakerState:
                breaker.add_metric([state.value], 1.0 if state is current else 0.0)
        yield breaker
