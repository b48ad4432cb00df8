"""``make demo``: serve the example on SQLite (its lifespan makes the tables), say how to talk to it."""

from __future__ import annotations

import sys

from trio_rest._cli import main

HELP = """\
Users and addresses on SQLite (users.db), served on ws://127.0.0.1:8080/ .
In another terminal, replay the article's client session:

    .venv/bin/python -m examples.users.client

or send envelopes with any WebSocket client, e.g.
    {"method": "POST", "url": "/address/", "data": {"email_address": "a@example.com"}, "id": 1}
    {"method": "GET", "url": "/user/list", "id": 2}
"""

if __name__ == "__main__":
    print(HELP, flush=True)
    sys.exit(main(["run", "examples.users.app:app", "--port", "8080", *sys.argv[1:]]))
