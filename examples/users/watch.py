"""Watch the users change, live: ``SUBSCRIBE /user/list`` and print each notification.

python -m examples.users.watch [ws://127.0.0.1:8080/] [--count N]

Leave it running beside ``make demo``, then run ``python -m examples.users.client`` in a
third terminal: each user it creates or updates is printed here as soon as it is committed.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import trio
import trio_websocket

from trio_rest.client import connect


async def main(
    url: str = "ws://127.0.0.1:8080/",
    count: int | None = None,
    *,
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> list[tuple[str | None, Any]]:
    """Print (and return) the first `count` notifications (all of them, with None)."""
    seen: list[tuple[str | None, Any]] = []
    async with connect(url, reconnect=False) as client, client.subscribe("/user/list") as users:
        print("watching /user/list (Ctrl+C to stop)", flush=True)
        task_status.started()
        async for note in users:
            seen.append((note.event_name, note.data))
            print(f"{note.event_name}: {note.data}", flush=True)
            if count is not None and len(seen) >= count:
                break
    return seen


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m examples.users.watch", description=__doc__.split("\n")[0]
    )
    parser.add_argument("url", nargs="?", default="ws://127.0.0.1:8080/")
    parser.add_argument("--count", type=int, default=None, help="stop after this many notifications")
    options = parser.parse_args(argv)
    try:
        trio.run(main, options.url, options.count)
    except (OSError, trio_websocket.HandshakeError) as exc:
        print(
            f"cannot talk to {options.url}: {exc} (is the server running? `make demo` starts it)",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
