"""What every benchmark server shares: the command line and the one record it serves."""

from __future__ import annotations

import argparse

__all__ = ["USERS", "parse_address"]

#: The records behind ``/users/{id}``; the benchmark asks for user 17.
USERS: dict[int, dict[str, object]] = {17: {"id": 17, "name": "Ada Lovelace", "email": "ada@example.com"}}


def parse_address(description: str | None) -> tuple[str, int]:
    """Read ``--host`` and ``--port`` from the command line."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    return args.host, args.port
