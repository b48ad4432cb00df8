"""Running the Node tests of tests/js/ from pytest: each file under ``node --test``, or a visible skip.

A file's tests run against servers started from this tree's sources (PYTHONPATH and
TESTS_PYTHON are set for them). The pytest test fails when one of them fails, or when
none ran; it is skipped, with the reason, when Node, a WebSocket in Node, or an npm package
the file needs is missing (``npm ci --prefix tests/js`` installs them; ``make test`` and
.ci/run do).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests._environment import child_env

ROOT = Path(__file__).parents[1]
JS = ROOT / "tests" / "js"


def node() -> str:
    """The ``node`` command, or a skip."""
    found = shutil.which("node")
    if found is None:
        pytest.skip("node is not installed: the JavaScript tests need Node 20 or later")
    return found


def websocket_flags(node: str) -> list[str]:
    """What this Node needs for a global WebSocket: nothing (22 and later) or a flag (20), or a skip."""
    probe = "process.exit(typeof WebSocket === 'function' ? 0 : 1)"
    if subprocess.run([node, "-e", probe], check=False).returncode == 0:
        return []
    flagged = [node, "--experimental-websocket", "-e", probe]
    if subprocess.run(flagged, check=False, capture_output=True).returncode == 0:
        return ["--experimental-websocket"]
    pytest.skip("this Node has no WebSocket, even with --experimental-websocket (Node 18: use 20 or later)")


def need_package(name: str) -> None:
    """Skip unless the npm package `name` is installed in tests/js/node_modules."""
    if not (JS / "node_modules" / name / "package.json").is_file():
        pytest.skip(f"the npm package {name} is not installed: run `npm ci --prefix tests/js`")


def run_node_tests(file: str, *, env: dict[str, str] | None = None, timeout: float = 180) -> dict[str, int]:
    """``node --test tests/js/FILE``: its counts (``tests``, ``pass``, ``fail``, ``skipped``...).

    Fails the calling test, with Node's whole report, when a test failed or none passed.
    """
    command = node()
    environment = child_env({"TESTS_PYTHON": sys.executable, **(env or {})})
    done = subprocess.run(
        [command, *websocket_flags(command), "--test", f"tests/js/{file}"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    report = done.stdout + done.stderr
    counts = {name: int(value) for name, value in re.findall(r"^# (\w+) (\d+)$", report, re.M)}
    assert done.returncode == 0, report
    assert counts.get("fail") == 0 and counts.get("pass", 0) > 0, report
    return counts
