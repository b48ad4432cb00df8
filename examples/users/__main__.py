"""``make demo``: serve the example on SQLite (its lifespan makes the tables), say how to talk to it.

The explorer page is on (``--set explorer=true``): the API can be seen and called from a browser.

python -m examples.users [--port 8080] [--host 127.0.0.1]
"""

from __future__ import annotations

import argparse
import sys

from trio_rest._cli import main

HELP = """\
Users and addresses on SQLite (users.db in this folder).
Open {page} in a browser to see the routes and call them (the explorer).

In another terminal, replay the article's client session:

    .venv/bin/python -m examples.users.client {url}

and watch its writes arrive live (SUBSCRIBE /user/list) in a third one, started first:

    .venv/bin/python -m examples.users.watch {url}

or send envelopes with any WebSocket client, e.g.
    {{"method": "POST", "url": "/address/", "data": {{"email_address": "a@example.com"}}, "id": 1}}
    {{"method": "GET", "url": "/user/list", "id": 2}}

Log in as a user the session created, then call an authenticated view with the token:
    {{"method": "POST", "url": "/login", "data": {{"name": "Neyton", "password": "password"}}, "id": 3}}
    {{"method": "GET", "url": "/me", "args": {{"token": "<the token /login answered>"}}, "id": 4}}
(tokens are signed with USERS_JWT_SECRET, or a secret made at start-up when it is unset)
"""


def run(argv: list[str]) -> int:
    """Print how to talk to the example, then serve it until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m examples.users", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free one (printed below)")
    args = parser.parse_args(argv)
    address = f"{args.host}:{args.port}" if args.port else None
    url = f"ws://{address}/" if address else "URL  (the address printed below)"
    page = f"http://{address}/" if address else "the address printed below (http://)"
    print(HELP.format(url=url, page=page), flush=True)
    serve = ["run", "examples.users.app:app", "--host", args.host, "--port", str(args.port)]
    return main([*serve, "--set", "explorer=true"])


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
