"""One benchmark run: every server, every measurement, interleaved and repeated.

For each repeat, the servers run one after another (the order rotates, so
none is always first); each gets a fresh process, pinned to one core while
this process (the load generator) holds the other. On a fresh server, in
order: a short warm-up exchange, memory per idle connection, the pipelined,
fan-in and ping-pong workloads, connection churn. Every step is bounded in
time, and the server is killed when its turn ends, however it ends.
"""

from __future__ import annotations

import functools
import os
import platform
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

from ._loadgen import LoadError, close_idle, open_idle, run_handshakes, run_load
from ._machine import Quiet, busy_seconds
from ._servers import REPO, ServerError, ServerProcess, ServerSpec, free_port, project_python
from ._venv import ensure_venv, installed_versions

__all__ = ["FULL", "QUICK", "WORKLOADS", "Config", "measure", "run"]

#: The request workloads: name -> (sockets, requests in flight per socket). Ping-pong is
#: one request at a time on one socket: its latency is the cost of one round trip.
WORKLOADS: dict[str, tuple[int, int]] = {"pipelined": (8, 16), "fan_in": (64, 1), "ping_pong": (1, 1)}
WORKLOADS_AND_CHURN = (*WORKLOADS, "handshakes")


@attrs.frozen(kw_only=True)
class Config:
    """How long and how often everything is measured.

    Attributes:
        repeats: rounds over all servers; the table reports medians.
        warmup: seconds of load before a workload's window opens.
        duration: seconds of a workload's measurement window.
        handshake_warmup: seconds of churn before its window opens.
        handshake_duration: seconds of the churn window.
        handshake_concurrency: connections being opened at once.
        idle_connections: connections held open to measure memory per connection.
        settle: seconds to let a server settle before reading its memory.
        budget: seconds the whole run may take before it is aborted.
        max_foreign: load (fraction of a core) from other processes on our two
            cores above which a window counts as disturbed.
        retries: extra attempts at a disturbed window.
        quiet_wait: seconds to wait for quiet cores before a server starts, or
            before a retry.
        quiet_allowance: seconds of such waiting for the whole run; once
            spent, nothing waits or is retried (the disturbance is reported).
    """

    repeats: int
    warmup: float
    duration: float
    handshake_warmup: float
    handshake_duration: float
    handshake_concurrency: int = 8
    idle_connections: int
    settle: float
    budget: float
    max_foreign: float = 0.1
    retries: int
    quiet_wait: float
    quiet_allowance: float


# Quick: about three minutes for the twelve servers, three workloads and churn (about
# 6.5 s per server and repeat), with at most 6 s spent waiting for a quiet machine.
QUICK = Config(
    repeats=2,
    warmup=0.3,
    duration=0.8,
    handshake_warmup=0.2,
    handshake_duration=0.8,
    idle_connections=200,
    settle=0.3,
    budget=300,
    retries=1,
    quiet_wait=3.0,
    quiet_allowance=6.0,
)
FULL = Config(
    repeats=5,
    warmup=1.0,
    duration=4.0,
    handshake_warmup=0.5,
    handshake_duration=3.0,
    idle_connections=1000,
    settle=0.5,
    # About 23 s per server and repeat, 12 servers: ~25 minutes, plus retries and waiting.
    budget=2700,
    retries=2,
    quiet_wait=30.0,
    quiet_allowance=180.0,
)


def _step(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one measurement; a failure is recorded, not raised, so the other steps still run."""
    try:
        return fn()
    except (LoadError, OSError) as exc:
        return {"error": f"{name}: {exc}"}


def _undisturbed(name: str, fn: Callable[[], dict[str, Any]], config: Config, quiet: Quiet) -> dict[str, Any]:
    """Measure; when another process used our cores meanwhile, wait for quiet and measure again.

    Keeps the least disturbed attempt; ``foreign`` records how disturbed it was
    and ``attempts`` how many were made.
    """
    best: dict[str, Any] | None = None
    for attempt in range(1, config.retries + 2):
        result = _step(name, fn)
        if "error" in result:
            return result
        result["attempts"] = attempt
        foreign = result.get("foreign")
        if best is None or (foreign is not None and foreign < best["foreign"]):
            best = result
        if foreign is None or foreign <= config.max_foreign or quiet.exhausted:
            break
        quiet.wait(config.quiet_wait)
    assert best is not None
    return best


def measure(server: ServerProcess, config: Config, quiet: Quiet | None = None) -> dict[str, Any]:
    """Take every measurement of one running server.

    Args:
        server: a started server.
        config: durations and sizes.
        quiet: watches the server's and the load generator's cores, when
            pinned: their foreign load is then measured, and a disturbed
            window measured again while its allowance of waiting lasts.

    Returns:
        ``{"idle": ..., "pipelined": ..., "fan_in": ..., "ping_pong": ..., "handshakes": ...}``;
        a step that failed holds ``{"error": ...}``.
    """
    quiet = quiet if quiet is not None else Quiet((), threshold=config.max_foreign, allowance=0)
    cpus = quiet.cpus
    # Warm-up: lazy imports, first-use caches; nothing of it is recorded.
    _step("warm-up", lambda: _load(server, cpus, 1, 4, 0.0, 0.2))
    result: dict[str, Any] = {"idle": _step("idle", lambda: _idle_memory(server, config))}
    for name, (connections, window) in WORKLOADS.items():
        result[name] = _undisturbed(
            name,
            functools.partial(_load, server, cpus, connections, window, config.warmup, config.duration),
            config,
            quiet,
        )
    result["handshakes"] = _undisturbed(
        "handshakes", lambda: _handshakes(server, cpus, config), config, quiet
    )
    return result


Probe = tuple[float, float, tuple[float, ...]]


def _prober(server: ServerProcess, cpus: tuple[int, ...]) -> Callable[[], Probe]:
    """What a window records at each end: server CPU, our CPU, and each core's busy time."""
    return lambda: (server.cpu_seconds(), time.process_time(), busy_seconds(cpus) if cpus else ())


def _foreign(start: Probe, end: Probe, seconds: float) -> float | None:
    """The busiest core's load from processes other than the server and the load generator."""
    if not start[2]:
        return None
    server_busy, loadgen_busy = (b - a for a, b in zip(start[2], end[2], strict=True))
    server_own, loadgen_own = end[0] - start[0], end[1] - start[1]
    return max(0.0, server_busy - server_own, loadgen_busy - loadgen_own) / seconds


def _load(
    server: ServerProcess,
    cpus: tuple[int, ...],
    connections: int,
    window: int,
    warmup: float,
    duration: float,
) -> dict[str, Any]:
    r = run_load(
        server.host,
        server.port,
        connections=connections,
        window=window,
        warmup=warmup,
        duration=duration,
        key=server.spec.key,
        probe=_prober(server, cpus),
    )
    start, end = r.probe
    cpu = end[0] - start[0]
    return {
        "rps": r.rps,
        "p50_ms": r.p50_ms,
        "p99_ms": r.p99_ms,
        "requests": r.requests,
        "errors": r.errors,
        "seconds": r.seconds,
        "cpu_us_per_req": cpu / r.requests * 1e6 if r.requests else None,
        "server_util": cpu / r.seconds,
        "loadgen_util": r.loadgen_cpu_s / r.seconds,
        "foreign": _foreign(start, end, r.seconds),
    }


def _idle_memory(server: ServerProcess, config: Config) -> dict[str, Any]:
    time.sleep(config.settle)
    before = server.rss_bytes()
    socks = open_idle(server.host, server.port, config.idle_connections, key=server.spec.key)
    try:
        time.sleep(config.settle)
        after = server.rss_bytes()
    finally:
        close_idle(socks)
    time.sleep(config.settle)  # let the server tear them down before the next step
    n = config.idle_connections
    return {
        "connections": n,
        "kib_per_conn": (after - before) / n / 1024,
        "rss_before_mib": before / 2**20,
        "rss_after_mib": after / 2**20,
    }


def _handshakes(server: ServerProcess, cpus: tuple[int, ...], config: Config) -> dict[str, Any]:
    r = run_handshakes(
        server.host,
        server.port,
        concurrency=config.handshake_concurrency,
        warmup=config.handshake_warmup,
        duration=config.handshake_duration,
        key=server.spec.key,
        probe=_prober(server, cpus),
    )
    start, end = r.probe
    cpu = end[0] - start[0]
    return {
        "rate": r.rate,
        "handshakes": r.handshakes,
        "errors": r.errors,
        "seconds": r.seconds,
        "cpu_us_per_handshake": cpu / r.handshakes * 1e6 if r.handshakes else None,
        "server_util": cpu / r.seconds,
        "foreign": _foreign(start, end, r.seconds),
    }


def _pin() -> tuple[int | None, int | None]:
    """Pin this process (the load generator) to one core; return (server core, load generator core)."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    server_cpu, loadgen_cpu = cpus[0], cpus[1]
    os.sched_setaffinity(0, {loadgen_cpu})
    return server_cpu, loadgen_cpu


class BudgetExceededError(Exception):
    """The whole run took longer than `Config.budget`."""


@contextmanager
def _bounded(seconds: float) -> Iterator[None]:
    """Abort the run (with cleanup) when it overruns, or when the harness is told to stop."""

    def expire(signum: int, frame: object) -> None:
        raise BudgetExceededError(f"the run took longer than {seconds:.0f} s")

    def terminate(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    old_alarm = signal.signal(signal.SIGALRM, expire)
    old_term = signal.signal(signal.SIGTERM, terminate)
    signal.alarm(max(1, int(seconds)))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old_alarm)
        signal.signal(signal.SIGTERM, old_term)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _commit() -> str | None:
    """The checked-out commit, ``+dirty`` when the measured code differs from it (read-only git calls)."""
    git = ["git", "--no-optional-locks"]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            [*git, "diff", "--quiet", "HEAD", "--", "trio_rest", "protocol", "benchmarks"],
            cwd=REPO,
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = head.stdout.strip()
    if not commit:
        return None
    return f"{commit}+dirty" if dirty.returncode == 1 else commit


_PROJECT_PACKAGES = ("trio", "trio-websocket", "wsproto", "websockets", "orjson")
_COMPETITOR_PACKAGES = (
    "websockets",
    "uvicorn",
    "starlette",
    "fastapi",
    "python-socketio",
    "python-engineio",
    "django",
    "channels",
    "daphne",
    "twisted",
    "djangochannelsrestframework",
    "picows",
    "autobahn",
    "aiorest-ws",
    "orjson",
)


def run(
    config: Config,
    specs: Sequence[ServerSpec],
    *,
    results_dir: Path,
    competitors: bool = True,
    label: str = "full",
    pin: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the benchmark and return its raw document (also written as JSON by the caller).

    Args:
        config: durations, repeats and sizes.
        specs: the servers, reference first.
        results_dir: where server logs go.
        competitors: False to skip the servers that need the competitors' venv.
        label: ``"quick"`` or ``"full"``, recorded in the document.
        pin: pin the servers to one core and this process to another (False
            leaves this process's affinity alone, e.g. inside a test run).
        log: where progress lines go.

    Returns:
        ``{"meta": ..., "config": ..., "servers": ..., "runs": [...]}``.
    """
    started = time.time()
    competitor_python: str | None = None
    if competitors and any(spec.competitor for spec in specs):
        try:
            competitor_python = str(ensure_venv())
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            log(f"competitors skipped: their virtual environment could not be set up ({exc})")
    specs = [spec for spec in specs if not spec.competitor or competitor_python]
    meta: dict[str, Any] = {
        "label": label,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "commit": _commit(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "project_versions": installed_versions(project_python(), _PROJECT_PACKAGES),
        "competitor_versions": (
            installed_versions(competitor_python, _COMPETITOR_PACKAGES) if competitor_python else {}
        ),
    }
    server_cpu, loadgen_cpu = _pin() if pin else (None, None)
    meta["pinning"] = {"server_cpu": server_cpu, "loadgen_cpu": loadgen_cpu}
    cpus = (server_cpu, loadgen_cpu) if server_cpu is not None and loadgen_cpu is not None else ()
    quiet = Quiet(cpus, threshold=config.max_foreign, allowance=config.quiet_allowance)
    logs = results_dir / f"logs-{time.strftime('%Y%m%d-%H%M%S', time.localtime(started))}"
    runs: list[dict[str, Any]] = []
    with _bounded(config.budget):
        for repeat in range(config.repeats):
            shift = repeat % len(specs)
            for spec in [*specs[shift:], *specs[:shift]]:
                python = competitor_python if spec.competitor else project_python()
                assert python is not None
                sample: dict[str, Any] = {"server": spec.name, "repeat": repeat}
                t = time.monotonic()
                sample["quiet_before"] = quiet.wait(config.quiet_wait)
                try:
                    with ServerProcess(
                        spec,
                        python=python,
                        port=free_port(),
                        log=logs / f"{spec.name}-{repeat}.log",
                        cpu=server_cpu,
                    ) as server:
                        sample.update(measure(server, config, quiet))
                except ServerError as exc:
                    sample["error"] = str(exc)
                runs.append(sample)
                log(_progress(sample, repeat, config.repeats, time.monotonic() - t))
    meta["seconds"] = time.time() - started
    return {
        "meta": meta,
        "config": attrs.asdict(config),
        "workloads": {name: {"sockets": c, "in_flight": w} for name, (c, w) in WORKLOADS.items()},
        "servers": [attrs.asdict(spec) for spec in specs],
        "runs": runs,
    }


def _progress(sample: dict[str, Any], repeat: int, repeats: int, seconds: float) -> str:
    def rate(step: str, field: str, digits: int = 0) -> str:
        value = sample.get(step, {}).get(field)
        return f"{value:,.{digits}f}" if isinstance(value, float) else "failed"

    head = f"[{repeat + 1}/{repeats}] {sample['server']:<28}"
    if "error" in sample:
        return f"{head} failed: {sample['error'].splitlines()[0]}"
    foreign = [v for step in WORKLOADS_AND_CHURN if (v := sample.get(step, {}).get("foreign")) is not None]
    disturbed = f", other load up to {max(foreign):.2f} core" if foreign and max(foreign) > 0.1 else ""
    return (
        f"{head} pipelined {rate('pipelined', 'rps')} req/s, fan-in {rate('fan_in', 'rps')} req/s, "
        f"ping-pong p50 {rate('ping_pong', 'p50_ms', 3)} ms, "
        f"{rate('handshakes', 'rate')} handshakes/s ({seconds:.1f} s{disturbed})"
    )
