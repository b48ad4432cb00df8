"""``make demo``: serve the example app and say how to talk to it."""

from __future__ import annotations

import sys

from trio_rest._cli import main

HELP = """\
The demo app is examples/hello.py. In another terminal, try:

    .venv/bin/python -m examples.hello_client

or send your own envelopes with any WebSocket client to ws://127.0.0.1:8080/ , e.g.
    {"method": "GET", "url": "/user/1", "id": 1}
"""

if __name__ == "__main__":
    print(HELP, flush=True)
    sys.exit(main(["run", "examples.hello:app", "--port", "8080", *sys.argv[1:]]))
