"""Small stand-ins for what the harness produces, for tests that run no server."""

from __future__ import annotations

from typing import Any

import attrs

from benchmarks._runner import Config

#: The shortest configuration that still measures something.
TINY = Config(
    repeats=1,
    warmup=0.1,
    duration=0.5,
    handshake_warmup=0.1,
    handshake_duration=0.3,
    idle_connections=10,
    settle=0.05,
    budget=60,
    retries=0,
    quiet_wait=0.0,
    quiet_allowance=0.0,
)


def fake_sample(server: str, rps: float, *, repeat: int = 0, p50_ms: float = 1.0) -> dict[str, Any]:
    """One repeat of one server: pipelined measured, fan-in failed, ping-pong absent."""
    load = {"rps": rps, "p50_ms": p50_ms, "p99_ms": 2.0, "cpu_us_per_req": 1e6 / rps, "server_util": 1.0}
    return {
        "server": server,
        "repeat": repeat,
        "idle": {"kib_per_conn": 8.0},
        "pipelined": load,
        "fan_in": {"error": "fan_in: refused"},
        "handshakes": {"rate": 100.0},
    }


def fake_doc(servers: list[dict[str, Any]], runs: list[dict[str, Any]], **meta: Any) -> dict[str, Any]:
    """A run's raw document as `benchmarks._runner.run` returns it, with these rows and samples."""
    return {
        "meta": {
            "label": "test",
            "python": "3",
            "cpu": "cpu",
            "cores": 2,
            "kernel": "k",
            "pinning": {"server_cpu": 0, "loadgen_cpu": 1},
            "project_versions": {"trio": "0"},
            **meta,
        },
        "config": attrs.asdict(attrs.evolve(TINY, repeats=len({run["repeat"] for run in runs}))),
        "workloads": {
            "pipelined": {"sockets": 8, "in_flight": 16},
            "fan_in": {"sockets": 64, "in_flight": 1},
            "ping_pong": {"sockets": 1, "in_flight": 1},
        },
        "servers": servers,
        "runs": runs,
    }
