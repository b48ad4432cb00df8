"""`Metrics`: an App's Prometheus metrics, served at ``GET /metrics`` when `Settings.metrics` is on.

Counted as they happen: the requests answered, by view, method and status, and the time from
reading each request to its reply (a histogram). Read when scraped: the open connections,
what notifications did (`PushStats`) and whether the broker is connected. Each App has its own
registry, so that two Apps in a process (tests) never mix their figures.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

if TYPE_CHECKING:
    from ._app import App

__all__ = ["CONTENT_TYPE", "Metrics"]

#: The ``Content-Type`` of the text format.
CONTENT_TYPE = CONTENT_TYPE_LATEST

#: Seconds: a request's latency buckets, from a cached read to a slow query.
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The App's metrics registry and the counters its connections feed."""

    def __init__(self, app: App) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "trio_rest_requests",
            "Requests answered, by view (- when none ran), method and status.",
            ["view", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "trio_rest_request_seconds",
            "Seconds from reading a request to queueing its reply, by view and method.",
            ["view", "method"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_AppCollector(app))

    def answered(self, view: str, method: str, status: int, seconds: float | None) -> None:
        """Count one reply (and its latency, when a view ran)."""
        self.requests.labels(view, method, str(status)).inc()
        if seconds is not None:
            self.latency.labels(view, method).observe(seconds)

    def render(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)


class _AppCollector:
    """What is read from the App when scraped."""

    def __init__(self, app: App) -> None:
        self._app = app

    def describe(self) -> list[Any]:
        return []  # the families depend on nothing but the App: no need to describe them ahead

    def collect(self) -> Iterator[Any]:
        app = self._app
        yield GaugeMetricFamily(
            "trio_rest_connections",
            "Open WebSocket connections.",
            value=sum(len(server.connections) for server in list(app.servers)),
        )
        stats = app.push_stats
        for name, help_text in (
            ("published", "Messages published to topics."),
            ("delivered", "Notifications queued for members of topics."),
            ("dropped", "Notifications dropped for slow clients (drop_oldest)."),
            ("slow_disconnects", "Clients disconnected with 1008 for not reading."),
            ("failed", "Notifications of committed writes that could not be published."),
        ):
            yield CounterMetricFamily(
                f"trio_rest_notifications_{name}", help_text, value=getattr(stats, name)
            )
        connected = getattr(app.broker, "connected", True)
        yield GaugeMetricFamily(
            "trio_rest_broker_connected",
            "1 when the broker is reachable (always, in memory).",
            value=int(connected),
        )
