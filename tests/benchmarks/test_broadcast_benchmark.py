"""The broadcast benchmark runs its trio-rest rows end to end (no figure is asserted)."""

from __future__ import annotations

import sys

from benchmarks.broadcast import ROWS, measure
from tests._redis import RedisServer


def test_the_in_memory_row_delivers_to_every_subscriber() -> None:
    point = measure(ROWS["trio-memory"], "redis://unused", sys.executable, 20, rate=10, duration=1)
    assert point["asked_per_s"] == 200
    assert point["lost_share"] == 0 and point["delivered_per_s"] == 200
    assert 0 <= point["p50_ms"] <= point["p99_ms"]


def test_the_redis_row_runs_two_workers_and_an_outside_publisher(redis: RedisServer) -> None:
    point = measure(ROWS["trio-redis"], redis.url, sys.executable, 20, rate=10, duration=1)
    assert point["lost_share"] == 0 and point["delivered_per_s"] == 200
