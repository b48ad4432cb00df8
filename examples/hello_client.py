"""Talk to the demo server: ``python -m examples.hello_client [ws://127.0.0.1:8080/]``."""

from __future__ import annotations

import sys

import trio

from trio_rest.client import connect


async def main(url: str) -> list[str]:
    lines = []
    async with connect(url, reconnect=False) as client:
        for path in ("/user/1", "/user/2", "/nowhere"):
            response = await client.get(path)
            lines.append(f"GET {path} -> {response.status} {response.data or response.detail}")
    for line in lines:
        print(line)
    return lines


if __name__ == "__main__":
    trio.run(main, sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:8080/")
