"""``python -m trio_rest run``: loads an app, serves it, logs, stops on a signal."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import trio
import trio_websocket

from tests._environment import child_env
from trio_rest import App
from trio_rest._cli import load_app

ROOT = Path(__file__).parents[2]


def test_load_app_accepts_an_app_or_a_factory() -> None:
    assert isinstance(load_app("tests.trio_rest.conftest:build_app"), App)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_colon", "expected MODULE:ATTR"),
        ("no.such.module:app", "cannot import"),
        ("tests.trio_rest.conftest:UserView", "is not a trio_rest.App"),
    ],
)
def test_load_app_errors(target: str, message: str) -> None:
    with pytest.raises(SystemExit, match=message):
        load_app(target)


async def test_run_serves_logs_and_stops_gracefully_on_sigterm() -> None:
    env = child_env()
    process = subprocess.Popen(
        [sys.executable, "-m", "trio_rest", "run", "tests.trio_rest.conftest:build_app", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with trio.fail_after(20):
            assert process.stdout is not None
            line = await trio.to_thread.run_sync(process.stdout.readline)
            while "serving on ws://" not in line:
                line = await trio.to_thread.run_sync(process.stdout.readline)
            url = line.split()[3]
            async with trio_websocket.open_websocket_url(url) as ws:
                await ws.send_message('{"method": "GET", "url": "/user/1", "id": 1}')
                assert orjson.loads(await ws.get_message())["status"] == 200
                process.send_signal(signal.SIGTERM)
                with pytest.raises(trio_websocket.ConnectionClosed) as info:
                    await ws.get_message()
            assert info.value.reason.code == 1001
            output = await trio.to_thread.run_sync(process.communicate)
    finally:
        process.kill()
    log = output[0]
    assert process.returncode == 0
    assert "connected to /" in log and "closed with 1001" in log and "shutting down gracefully" in log
