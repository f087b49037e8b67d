"""Prometheus metrics of a bot process, read from the layer's plain counters at scrape time.

Nothing is counted on the hot path here: `SettingsReader.stats` and `ChangeListener.stats` are
plain integers the layer already keeps, and the collector turns them into samples when scraped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from guildkit.settings.breaker import BreakerState
from guildkit.settings.runtime import ReadingSide

log = logging.getLogger(__name__)


class BotCollector(Collector):
    def __init__(self, side: ReadingSide, guild_count: Callable[[], int] | None = None) -> None:
        self._side = side
        self._guild_count = guild_count

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        stats = self._side.reader.stats
        by_tier = (
            ("l1", stats.l1_hits),
            ("l2", stats.l2_hits),
            ("db", stats.db_reads),
            ("stale", stats.stale_reads),
        )
        reads = CounterMetricFamily(
            "guildkit_bot_settings_reads",
            "Settings reads by the tier that answered",
            labels=["tier"],
        )
        for tier, value in by_tier:
            reads.add_metric([tier], value)
        yield reads
        total = sum(value for _, value in by_tier)
        ratios = GaugeMetricFamily(
            "guildkit_bot_settings_hit_ratio",
            "Share of settings reads answered by each tier since start (0 before any read)",
            labels=["tier"],
        )
        for tier, value in by_tier:
            ratios.add_metric([tier], value / total if total else 0.0)
        yield ratios
        yield CounterMetricFamily(
            "guildkit_bot_settings_fenced_loads",
            "Loads discarded because a newer version was signalled meanwhile",
            value=stats.fenced_loads,
        )
        listener = self._side.listener
        signals = CounterMetricFamily(
            "guildkit_bot_settings_invalidations",
            "Change signals received, by path",
            labels=["path"],
        )
        for path, value in listener.stats.received.items():
            signals.add_metric([path], value)
        yield signals
        lag = HistogramMetricFamily(
            "guildkit_bot_settings_commit_to_applied_seconds",
            "From a settings commit (PostgreSQL's clock) to this process applying it, "
            "by the path that delivered it first",
            labels=["path"],
        )
        for path, histogram in listener.stats.lag.items():
            lag.add_metric([path], histogram.cumulative(), sum_value=histogram.sum)
        yield lag
        yield GaugeMetricFamily(
            "guildkit_bot_applied_change_seq",
            "Highest settings change_seq this process has fully applied",
            value=listener.applied_change_seq,
        )
        breaker = GaugeMetricFamily(
            "guildkit_bot_redis_breaker_state",
            "Redis circuit breaker state (1 for the current state; none without Redis)",
            labels=["state"],
        )
        if self._side.l2 is not None:
            current = self._side.l2.breaker.state
            for state in BreakerState:
                breaker.add_metric([state.value], 1.0 if state is current else 0.0)
        yield breaker
        if self._guild_count is not None:
            yield GaugeMetricFamily(
                "guildkit_bot_guilds", "Guilds this process serves", value=self._guild_count()
            )


@dataclass
class MetricsServer:
    registry: CollectorRegistry
    server: Any
    port: int

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve_metrics(
    side: ReadingSide,
    port: int,
    *,
    guild_count: Callable[[], int] | None = None,
    host: str = "0.0.0.0",
) -> MetricsServer | None:
    """Start the exporter on `port` (0: off); a busy port is logged, not fatal."""
    if port == 0:
        return None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BotCollector(side, guild_count))
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        log.error(
            "metrics disabled: cannot listen on port %s (GUILDKIT_BOT_METRICS_PORT): %s", port, exc
        )
        return None
    log.info("metrics on http://%s:%s/metrics", host, port)
    return MetricsServer(registry=registry, server=server, port=port)
