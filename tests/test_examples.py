"""The examples run, and the README shows exactly what they print."""

from __future__ import annotations

import json
import re
from pathlib import Path

from examples import protocol_exchange

README = (Path(__file__).parents[1] / "README.md").read_text()


def _readme_json_blocks() -> list[str]:
    return [block.strip() for block in re.findall(r"```json\n(.*?)```", README, re.S)]


def test_protocol_exchange_matches_the_readme() -> None:
    wire = protocol_exchange.main()
    printed = [line[2:] for line in wire]
    blocks = _readme_json_blocks()
    assert blocks == [printed[0], printed[1], printed[3]]
    for block in blocks:
        json.loads(block)
