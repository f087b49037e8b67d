"""Prometheus metrics, in a registry per app so several apps (tests) never collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


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
