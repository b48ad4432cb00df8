"""``python -m benchmarks``: the end-to-end benchmark, and two helpers for profiling.

    python -m benchmarks run [--quick] [--servers a,b] [--repeats N] [--no-competitors]
                             [--baseline REV [--keep-baseline] [--baseline-dir DIR]]
    python -m benchmarks serve NAME [--port P]          # one server, in the foreground (exec)
    python -m benchmarks drive --port P [--workload pipelined|fan-in|ping-pong|handshakes] [--pid PID]

``run`` prints one Markdown table and writes the raw JSON to
``benchmarks/results/``. ``serve`` + ``drive`` reproduce one cell of it by
hand, e.g. under ``py-spy``, ``cProfile`` or ``strace -c -f``. The pure
protocol micro-benchmark is ``python -m benchmarks.protocol``.

``run --baseline REV`` also runs every selected trio-rest server from a git
worktree of REV, interleaved with the rest, and reports each trio-rest row's
ratio to it: a before/after comparison that one noisy machine can make.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import attrs

from ._baseline import BaselineError, check_imports, is_trio_rest, with_baselines, worktree
from ._loadgen import run_handshakes, run_load
from ._report import compare_baselines, format_markdown, summarize
from ._runner import FULL, QUICK, WORKLOADS, run
from ._servers import SERVERS, ServerSpec, project_env, project_python
from ._venv import ensure_venv
from ._wire import MODES

RESULTS = Path(__file__).resolve().parent / "results"


def _select(names: str | None) -> list[ServerSpec]:
    if not names:
        return list(SERVERS)
    known = {spec.name: spec for spec in SERVERS}
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise SystemExit(f"unknown server(s) {', '.join(unknown)}; known: {', '.join(known)}")
    # The reference row (the first server) stays first when it is selected.
    return [spec for spec in SERVERS if spec.name in wanted]


def _run(args: argparse.Namespace) -> int:
    config = QUICK if args.quick else FULL
    if args.repeats:
        config = attrs.evolve(config, repeats=args.repeats)
    specs = _select(args.servers)
    if (args.keep_baseline or args.baseline_dir) and not args.baseline:
        raise SystemExit("--keep-baseline and --baseline-dir go with --baseline REV")
    if args.no_competitors and all(spec.competitor for spec in specs):
        raise SystemExit("--no-competitors leaves none of the selected servers to measure")
    if args.baseline and not any(is_trio_rest(spec) for spec in specs):
        raise SystemExit("--baseline compares trio-rest rows: select trio-rest-websockets or -wsproto")
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        baseline: dict[str, str | bool] | None = None
        if args.baseline:
            try:
                tree = stack.enter_context(
                    worktree(args.baseline, keep=args.keep_baseline, parent=args.baseline_dir)
                )
                check_imports(tree.path, project_python())
            except BaselineError as exc:
                raise SystemExit(str(exc)) from exc
            specs = with_baselines(specs, tree)
            baseline = tree.describe()
        doc = run(
            config,
            specs,
            results_dir=results,
            competitors=not args.no_competitors,
            label="quick" if args.quick else "full",
        )
    if baseline:
        doc["meta"]["baseline"] = baseline
    summary = summarize(doc)
    doc["summary"] = summary
    doc["vs_baseline"] = compare_baselines(doc, summary)
    table = format_markdown(doc, summary)
    doc["markdown"] = table
    path = results / f"{time.strftime('%Y%m%d-%H%M%S')}-{doc['meta']['label']}.json"
    path.write_text(json.dumps(doc, indent=1))
    print()
    print(table)
    print(f"\nraw results: {path}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    spec = next((s for s in SERVERS if s.name == args.name), None)
    if spec is None:
        raise SystemExit(f"unknown server {args.name!r}; known: {', '.join(s.name for s in SERVERS)}")
    python = str(ensure_venv()) if spec.competitor else sys.executable
    argv = [python, "-m", spec.module, *spec.args, "--host", args.host, "--port", str(args.port)]
    print(" ".join(argv), flush=True)
    os.chdir(Path(__file__).resolve().parent.parent)
    os.execve(python, argv, project_env())


def _cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _drive(args: argparse.Namespace) -> int:
    def probe() -> float:
        return _cpu(args.pid)

    if args.workload == "handshakes":
        h = run_handshakes(
            args.host,
            args.port,
            concurrency=8,
            warmup=args.warmup,
            duration=args.seconds,
            key=args.key,
            probe=probe,
        )
        cpu = h.probe[1] - h.probe[0]
        print(f"{h.rate:,.0f} handshakes/s ({h.handshakes} in {h.seconds:.2f} s, {h.errors} errors)")
        if args.pid and h.handshakes:
            print(f"server CPU {cpu / h.handshakes * 1e6:.1f} µs/handshake, {cpu / h.seconds:.2f} cores")
        return 0
    connections, window = WORKLOADS[args.workload.replace("-", "_")]
    r = run_load(
        args.host,
        args.port,
        connections=connections,
        window=window,
        warmup=args.warmup,
        duration=args.seconds,
        key=args.key,
        probe=probe,
    )
    print(
        f"{r.rps:,.0f} req/s ({r.requests} in {r.seconds:.2f} s, {r.errors} errors), "
        f"p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms, "
        f"load generator {r.loadgen_cpu_s / r.seconds:.2f} cores"
    )
    if args.pid and r.requests:
        cpu = r.probe[1] - r.probe[0]
        print(f"server CPU {cpu / r.requests * 1e6:.1f} µs/req, {cpu / r.seconds:.2f} cores")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="trio-rest's end-to-end benchmark."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run_cmd = commands.add_parser("run", help="benchmark every server and print the table")
    run_cmd.add_argument("--quick", action="store_true", help="fewer repeats, shorter windows (~3 minutes)")
    run_cmd.add_argument(
        "--servers", help="comma-separated names (default: all): " + ", ".join(s.name for s in SERVERS)
    )
    run_cmd.add_argument("--repeats", type=int, help="override the number of repeats")
    run_cmd.add_argument(
        "--no-competitors", action="store_true", help="only the servers of the project's environment"
    )
    run_cmd.add_argument(
        "--results", default=str(RESULTS), help="where the JSON goes (default benchmarks/results)"
    )
    run_cmd.add_argument(
        "--baseline",
        metavar="REV",
        help="also run each selected trio-rest server from a git worktree of REV (e.g. HEAD~1, main), "
        "interleaved with the others, and report each trio-rest row's ratio to it",
    )
    run_cmd.add_argument(
        "--keep-baseline",
        action="store_true",
        help="keep the baseline's worktree afterwards (a later run at the same commit reuses it)",
    )
    run_cmd.add_argument(
        "--baseline-dir", metavar="DIR", help="where the baseline's worktree goes (default: the temp dir)"
    )
    serve = commands.add_parser("serve", help="run one server in the foreground (for profilers)")
    serve.add_argument("name", choices=[s.name for s in SERVERS])
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    drive = commands.add_parser("drive", help="drive a running server with one workload")
    drive.add_argument("--host", default="127.0.0.1")
    drive.add_argument("--port", type=int, required=True)
    drive.add_argument(
        "--workload", default="pipelined", choices=["pipelined", "fan-in", "ping-pong", "handshakes"]
    )
    drive.add_argument("--seconds", type=float, default=5.0, help="measurement window")
    drive.add_argument("--warmup", type=float, default=1.0)
    drive.add_argument(
        "--key",
        default="id",
        choices=list(MODES),
        help="correlation mode: what is sent and how replies are matched (a server's ServerSpec.key)",
    )
    drive.add_argument("--pid", type=int, help="the server's pid, to report its CPU per request")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "serve":
        return _serve(args)
    return _drive(args)


if __name__ == "__main__":
    sys.exit(main())
