"""The end-to-end harness's pieces run and produce results (timings are never asserted).

Only the project's own environment is used: trio-rest is started as a real
process on 127.0.0.1 and driven for about a second; the competitors' venv is
not needed. The whole module takes a few seconds.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import _wire
from benchmarks._report import format_markdown, summarize
from benchmarks._runner import run
from benchmarks._servers import REPO, SERVERS, project_env

from ._fakes import TINY, fake_doc, fake_sample


def _unmask(frame: bytes) -> tuple[int, bytes]:
    assert frame[1] & 0x80, "client frames are masked"
    length, start = frame[1] & 0x7F, 2
    if length == 126:
        length, start = int.from_bytes(frame[2:4], "big"), 4
    elif length == 127:
        length, start = int.from_bytes(frame[2:10], "big"), 10
    mask, payload = frame[start : start + 4], frame[start + 4 :]
    assert len(payload) == length
    return frame[0] & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


@pytest.mark.parametrize("size", [0, 5, 125, 126, 300, 70_000])
def test_masked_frames_unmask_to_their_payload(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    assert _unmask(_wire.masked_frame(_wire.OP_TEXT, payload)) == (_wire.OP_TEXT, payload)


def test_split_frames_keeps_the_incomplete_tail() -> None:
    stream = b"\x81\x02hi" + b"\x82\x7e\x01\x00" + b"x" * 256 + b"\x88\x02\x03"
    frames, tail = _wire.split_frames(stream)
    assert frames == [(_wire.OP_TEXT, b"hi"), (_wire.OP_BINARY, b"x" * 256)]
    assert tail == b"\x88\x02\x03"


def test_request_envelopes_carry_the_correlation_key() -> None:
    assert json.loads(_wire.request_payload("id", 7)) == {"method": "GET", "url": "/users/17", "id": 7}
    assert json.loads(_wire.request_payload("event_name", 7))["event_name"] == "7"


def test_harness_measures_trio_rest_and_prints_the_table(tmp_path: Path) -> None:
    reference = SERVERS[0]
    assert reference.name == "trio-rest-websockets" and not reference.competitor
    doc = run(TINY, [reference], results_dir=tmp_path, competitors=False, label="test", pin=False, log=print)
    [sample] = doc["runs"]
    assert "error" not in sample, sample
    for workload in ("pipelined", "fan_in", "ping_pong"):
        measured = sample[workload]
        assert "error" not in measured, measured
        assert measured["requests"] > 0 and measured["errors"] == 0
        assert measured["cpu_us_per_req"] is not None
    assert sample["handshakes"]["handshakes"] > 0
    assert math.isfinite(sample["idle"]["kib_per_conn"])
    assert list(tmp_path.glob("logs-*/trio-rest-websockets-0.log"))

    summary = summarize(doc)
    assert summary["trio-rest-websockets"]["pipelined"]["rps"] is not None
    table = format_markdown(doc, summary)
    assert "| trio-rest (websockets) |" in table
    assert "pipelined req/s" in table and "ping-pong p50 ms" in table and "KiB/idle conn" in table
    json.dumps(doc)  # what the CLI writes to benchmarks/results/


@pytest.mark.parametrize("name", ["trio-raw", "trio-websockets"])
def test_trio_reference_rows_answer_every_workload(name: str, tmp_path: Path) -> None:
    [spec] = [s for s in SERVERS if s.name == name]
    doc = run(TINY, [spec], results_dir=tmp_path, competitors=False, label="test", pin=False, log=print)
    [sample] = doc["runs"]
    assert "error" not in sample, sample
    for workload in ("pipelined", "fan_in", "ping_pong"):
        assert sample[workload]["requests"] > 0 and sample[workload]["errors"] == 0, sample[workload]
    assert sample["handshakes"]["handshakes"] > 0


def test_table_gives_each_row_its_ratio_to_the_reference() -> None:
    specs = [
        {"name": "a", "label": "A", "note": "the reference"},
        {"name": "b", "label": "B", "note": "other"},
    ]
    doc = fake_doc(specs, [fake_sample("a", 20_000.0), fake_sample("b", 10_000.0)])
    table = format_markdown(doc, summarize(doc))
    assert "| A | 20.0k |" in table
    assert "| B | 10.0k (0.50x) |" in table
    assert "fan_in failed in 1 of 1 repeats" in table
    assert "Against the baseline" not in table


def test_aiorest_shims_make_a_generator_method_awaitable() -> None:
    # In a subprocess: the shims patch the standard library, which this test run must not see.
    code = """
import asyncio, collections, inspect
from benchmarks.servers._aiorest_shims import install
install()
assert collections.MutableMapping is collections.abc.MutableMapping
assert inspect.getargspec(lambda a, b=1: None) == (["a", "b"], None, None, (1,))

@asyncio.coroutine
def legacy(x):
    yield from asyncio.sleep(0)
    return x * 2

@asyncio.coroutine
def plain(x):
    return x + 1

assert asyncio.run(legacy(21)) == 42 and asyncio.run(plain(1)) == 2
print("ok")
"""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=project_env(), capture_output=True, text=True, timeout=30
    )
    assert out.stdout.strip() == "ok", out.stderr
