"""Django Channels 4 + djangochannelsrestframework, served by uvicorn or by daphne.

``--server uvicorn`` runs the application (`_channels_asgi`) under uvicorn with
its defaults, logging only warnings; ``--server daphne`` runs it as
``daphne -v 0 benchmarks.servers._channels_asgi:application`` would (Channels'
own server, Twisted on asyncio; ``-v 0``: warnings only, no access log).
"""

from __future__ import annotations

import argparse


def main() -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if args.server == "daphne":
        # Daphne installs Twisted's asyncio reactor when its server module is imported, and
        # imports the application itself (which configures Django).
        from daphne.cli import CommandLineInterface

        CommandLineInterface().run(
            [
                "-v",
                "0",
                "-b",
                args.host,
                "-p",
                str(args.port),
                "benchmarks.servers._channels_asgi:application",
            ]
        )
        return
    import uvicorn

    from ._channels_asgi import application

    uvicorn.run(
        application, host=args.host, port=args.port, log_level="warning", access_log=False, lifespan="off"
    )


if __name__ == "__main__":
    main()
