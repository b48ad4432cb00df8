"""The Redis server the broker tests start: the benchmarks' launcher (one copy of it)."""

from __future__ import annotations

from benchmarks._redis import RedisServer, redis_server

__all__ = ["RedisServer", "redis_server"]
