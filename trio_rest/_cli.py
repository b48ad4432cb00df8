"""The command line: ``python -m trio_rest run MODULE:ATTR --host 127.0.0.1 --port 8080``.

``python -m trio_rest asyncapi MODULE:ATTR`` prints the App's AsyncAPI document instead.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import logging
import os
import signal
import socket
import ssl
import sys
from collections.abc import Sequence
from errno import EADDRINUSE

import attrs
import orjson
import trio

from ._app import App
from ._asyncapi import asyncapi_document
from ._config import configure
from ._engine import ENGINE_NAMES
from ._errors import ConfigurationError
from ._server import ListenError, Server

__all__ = ["load_app", "main"]

log = logging.getLogger("trio_rest")


def load_app(target: str) -> App:
    """Import ``MODULE:ATTR`` and return the `App` it names.

    Args:
        target: e.g. ``"examples.users.app:app"``; the attribute may also be
            a function that returns an App.

    Returns:
        The App.

    Raises:
        SystemExit: the module or attribute is missing, or is not an App.
    """
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise SystemExit(f"expected MODULE:ATTR, got {target!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SystemExit(f"cannot import {module_name!r}: {exc}") from None
    app = getattr(module, attr, None)
    if callable(app) and not isinstance(app, App):
        app = app()
    if not isinstance(app, App):
        raise SystemExit(f"{target} is not a trio_rest.App (got {type(app).__name__})")
    return app


async def _run(
    app: App, host: str, port: int, ssl_context: ssl.SSLContext | None = None, reuse_port: bool = False
) -> None:
    server = Server(app, ssl_context=ssl_context)
    scheme = "ws" if ssl_context is None else "wss"
    async with trio.open_nursery() as nursery:
        await nursery.start(functools.partial(server.serve, host, port, reuse_port=reuse_port))
        worker = os.environ.get("TRIO_REST_WORKER")
        stop = trio.Event()
        if worker is not None:  # a worker of `--workers N`: its supervisor says when all listen
            where = f"{scheme}://{host}:{server.port}/"
            print(f"trio-rest worker {worker} (pid {os.getpid()}) listening on {where}")
            supervisor = int(os.environ.get("TRIO_REST_SUPERVISOR") or os.getppid())
            nursery.start_soon(_orphaned, supervisor, stop)
        else:
            print(f"trio-rest serving on {scheme}://{host}:{server.port}/ (Ctrl-C to stop)")
        sys.stdout.flush()
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as waiting:

                async def on_signal() -> None:
                    async for signum in signals:
                        log.info("received %s: shutting down gracefully", signal.Signals(signum).name)
                        stop.set()
                        return

                waiting.start_soon(on_signal)
                await stop.wait()
                waiting.cancel_scope.cancel()
        await server.shutdown()
        nursery.cancel_scope.cancel()


async def _orphaned(parent: int, stop: trio.Event) -> None:
    """A worker whose supervisor died (killed, say) shuts down rather than serve on alone."""
    while os.getppid() == parent:  # noqa: ASYNC110 - no event says a parent died: poll
        await trio.sleep(1)
    log.warning("the supervisor (pid %d) is gone: shutting down gracefully", parent)
    stop.set()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trio_rest", description="Serve a trio-rest app.")
    commands = parser.add_subparsers(dest="command", required=True)
    asyncapi = commands.add_parser("asyncapi", help="print an App's AsyncAPI 3.0 document (JSON)")
    asyncapi.add_argument("target", help="MODULE:ATTR naming the App, e.g. examples.users.app:app")
    run = commands.add_parser("run", help="serve an App")
    run.add_argument("target", help="MODULE:ATTR naming the App, e.g. examples.users.app:app")
    env = os.environ.get
    run.add_argument(
        "--host", default=env("TRIO_REST_HOST", "127.0.0.1"), help="address to bind (default 127.0.0.1)"
    )
    run.add_argument(
        "--port",
        type=int,
        default=env("TRIO_REST_PORT", "8080"),
        help="port (default 8080; 0 picks a free one)",
    )
    run.add_argument("--engine", choices=ENGINE_NAMES, help="WebSocket engine (default: the app's)")
    run.add_argument(
        "--log-level",
        default=env("TRIO_REST_LOG_LEVEL", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
    )
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting (e.g. max_in_flight=512), over TRIO_REST_* variables and the app's own",
    )
    run.add_argument(
        "--workers",
        type=int,
        default=env("TRIO_REST_WORKERS", "1"),
        help="server processes sharing the port, supervised (default 1); give them a --broker",
    )
    run.add_argument(
        "--broker",
        default=env("TRIO_REST_BROKER"),
        help="redis://host:port/db: publish through Redis, to every process and machine using it",
    )
    run.add_argument(
        "--reuse-port",
        action="store_true",
        help="share the port with other processes (SO_REUSEPORT), as --workers does",
    )
    run.add_argument(
        "--certfile", default=env("TRIO_REST_CERTFILE"), help="serve wss:// with this certificate chain (PEM)"
    )
    run.add_argument(
        "--keyfile",
        default=env("TRIO_REST_KEYFILE"),
        help="the certificate's private key (PEM; default: in --certfile)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; every option also reads ``TRIO_REST_<OPTION>`` (the option wins).

    Args:
        argv: the arguments (``sys.argv[1:]`` when None).

    Returns:
        The exit status.
    """
    args = _parser().parse_args(argv)
    if args.command == "asyncapi":
        return _print_asyncapi(args.target)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The websockets library logs every handshake at INFO: keep it for DEBUG runs.
    logging.getLogger("websockets").setLevel(max(logging.WARNING, logging.getLogger().level))
    sys.path.insert(0, ".")
    app = load_app(args.target)
    try:
        # The command line over the environment over the App's own settings.
        app.settings = configure(app.settings, os.environ, args.set)
        if args.engine is not None:
            app.settings = attrs.evolve(app.settings, engine=args.engine)
    except ConfigurationError as exc:
        print(f"trio-rest: {exc}", file=sys.stderr)
        return 2
    ssl_context = None
    if args.keyfile and not args.certfile:
        print("trio-rest: --keyfile needs --certfile", file=sys.stderr)
        return 2
    if args.certfile:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            ssl_context.load_cert_chain(args.certfile, args.keyfile)
        except (OSError, ssl.SSLError) as exc:
            print(f"trio-rest: cannot load the certificate: {exc}", file=sys.stderr)
            return 2
    if args.workers < 1:
        print("trio-rest: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.broker:
        from .brokers import RedisBroker

        try:
            app.broker = RedisBroker(args.broker)
        except ConfigurationError as exc:
            print(f"trio-rest: --broker: {exc}", file=sys.stderr)
            return 2
    if args.workers > 1:
        return _supervise(args, app)
    failure: ListenError | None = None
    try:
        trio.run(_run, app, args.host, args.port, ssl_context, args.reuse_port)
    except* ListenError as group:
        failure = _first(group)
    if failure is not None:
        in_use = failure.errno == EADDRINUSE
        hint = " (is another server running there? choose another --port)" if in_use else ""
        print(f"trio-rest: {failure.strerror}{hint}", file=sys.stderr)
        return 1
    return 0


def _print_asyncapi(target: str) -> int:
    """Print the AsyncAPI document of the App `target` names, as `run` would serve it."""
    sys.path.insert(0, ".")
    app = load_app(target)
    try:
        # The environment may give the App its authentication (TRIO_REST_JWT_SECRET).
        app.settings = configure(app.settings, os.environ, [])
        document = asyncapi_document(app, secure=bool(os.environ.get("TRIO_REST_CERTFILE")))
    except ConfigurationError as exc:
        print(f"trio-rest: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stdout.flush()
    return 0


def _supervise(args: argparse.Namespace, app: App) -> int:
    """Start ``--workers`` processes on the port and watch them (see `_supervisor`)."""
    from ._supervisor import supervise

    port = args.port or _free_port(args.host)
    command = ["-m", "trio_rest", "run", args.target, "--host", args.host, "--port", str(port)]
    command += ["--reuse-port", "--workers", "1", "--log-level", args.log_level]
    for option, value in (("--engine", args.engine), ("--broker", args.broker)):
        if value:
            command += [option, value]
    for option, value in (("--certfile", args.certfile), ("--keyfile", args.keyfile)):
        if value:
            command += [option, os.path.abspath(value)]
    for setting in args.set:
        command += ["--set", setting]
    if not args.broker:
        log.warning("%d workers without --broker: a notification reaches only its own process", args.workers)
    scheme = "wss" if args.certfile else "ws"

    def ready() -> None:
        where = f"{scheme}://{args.host}:{port}/"
        print(f"trio-rest serving on {where} with {args.workers} workers (Ctrl-C to stop)", flush=True)

    settings = app.settings
    stop_timeout = settings.shutdown_timeout + settings.close_timeout + 5
    return trio.run(supervise, command, args.workers, stop_timeout, ready)


def _free_port(host: str) -> int:
    """A port free on `host` now, for workers that must all listen on the same one."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _first(group: BaseExceptionGroup[ListenError]) -> ListenError:
    """The first error of a (possibly nested) exception group."""
    leaf: BaseException = group
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    assert isinstance(leaf, ListenError)
    return leaf
