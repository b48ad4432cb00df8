"""GET /metrics: Prometheus' text format, off by default, parsed back with prometheus-client."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from trio_rest import App, NotFound, Request, Settings, SimpleRouter, endpoint
from trio_rest.client import connect

from ._sockets import http_get, running


@endpoint
async def ok(request: Request) -> str:
    return "ok"


@endpoint
async def missing(request: Request) -> None:
    raise NotFound("No such thing.")


@endpoint
async def join(request: Request) -> str:
    request.connection.join("news")
    return "joined"


def _app(**settings: Any) -> App:
    router = SimpleRouter()
    router.register("/ok", ok, "GET")
    router.register("/missing", missing, "GET")
    router.register("/join", join, "POST")
    return App(router, settings=Settings(**settings))


def _samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


async def test_metrics_are_off_by_default() -> None:
    async with running(_app()) as server:
        head, _ = await http_get(server.port, "/metrics")
    assert head.split(b" ")[1] == b"404"


async def test_requests_connections_and_notifications_are_counted() -> None:
    app = _app(metrics=True)
    with trio.fail_after(20):
        async with running(app) as server, connect(f"ws://127.0.0.1:{server.port}/") as client:
            for _ in range(3):
                assert (await client.get("/ok")).status == 200
            assert (await client.get("/missing")).status == 404
            assert (await client.get("/nowhere")).status == 404  # answered with no view
            await client.post("/join")
            await app.publish("news", "n", 1)
            await client.notifications.receive()
            head, body = await http_get(server.port, "/metrics")
    assert head.split(b" ")[1] == b"200" and b"text/plain" in head
    samples = _samples(body)
    assert samples[("trio_rest_requests_total", (("method", "GET"), ("status", "200"), ("view", "ok")))] == 3
    assert (
        samples[("trio_rest_requests_total", (("method", "GET"), ("status", "404"), ("view", "missing")))]
        == 1
    )
    assert samples[("trio_rest_requests_total", (("method", "-"), ("status", "404"), ("view", "-")))] == 1
    assert samples[("trio_rest_request_seconds_count", (("method", "GET"), ("view", "ok")))] == 3
    assert samples[("trio_rest_connections", ())] == 1
    assert samples[("trio_rest_notifications_published_total", ())] == 1
    assert samples[("trio_rest_notifications_delivered_total", ())] == 1
    assert samples[("trio_rest_broker_connected", ())] == 1


def test_the_setting_is_a_boolean() -> None:
    from trio_rest import ConfigurationError

    with pytest.raises((TypeError, ConfigurationError)):
        Settings(metrics="yes")  # type: ignore[arg-type]
    assert Settings().from_env({"TRIO_REST_METRICS": "true"}).metrics is True
