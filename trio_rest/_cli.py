"""The command line: ``python -m trio_rest run MODULE:ATTR --host 127.0.0.1 --port 8080``."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import ssl
import sys
from collections.abc import Sequence
from errno import EADDRINUSE

import attrs
import trio

from ._app import App
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


async def _run(app: App, host: str, port: int, ssl_context: ssl.SSLContext | None = None) -> None:
    server = Server(app, ssl_context=ssl_context)
    scheme = "ws" if ssl_context is None else "wss"
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve, host, port)
        print(f"trio-rest serving on {scheme}://{host}:{server.port}/ (Ctrl-C to stop)", flush=True)
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                log.info("received %s: shutting down gracefully", signal.Signals(signum).name)
                break
        await server.shutdown()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trio_rest", description="Serve a trio-rest app.")
    commands = parser.add_subparsers(dest="command", required=True)
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
    failure: ListenError | None = None
    try:
        trio.run(_run, app, args.host, args.port, ssl_context)
    except* ListenError as group:
        failure = _first(group)
    if failure is not None:
        in_use = failure.errno == EADDRINUSE
        hint = " (is another server running there? choose another --port)" if in_use else ""
        print(f"trio-rest: {failure.strerror}{hint}", file=sys.stderr)
        return 1
    return 0


def _first(group: BaseExceptionGroup[ListenError]) -> ListenError:
    """The first error of a (possibly nested) exception group."""
    leaf: BaseException = group
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    assert isinstance(leaf, ListenError)
    return leaf
