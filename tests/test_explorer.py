"""The explorer page in a real browser: tests/js/explorer.test.mjs, chromium driven by playwright-core.

The page's files and headers are tested without a browser in tests/trio_rest/test_static.py.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests._node import JS, need_package, run_node_tests


def _chromium() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium is not installed (Debian's package `chromium`; .ci/run installs it)")
    return found


def test_the_explorer_in_chromium() -> None:
    """Open the example's explorer, send a request, log in, subscribe, see another client's write.

    The screenshot of the page after a request (explorer.png) lands in $TESTS_ARTIFACTS,
    by default tests/js/artifacts/ (not committed); a failing step leaves explorer-failure.png.
    """
    need_package("playwright-core")
    artifacts = Path(os.environ.get("TESTS_ARTIFACTS") or JS / "artifacts")
    screenshot = artifacts / "explorer.png"
    screenshot.unlink(missing_ok=True)  # the one checked below is this run's
    env = {"CHROMIUM": _chromium(), "TESTS_ARTIFACTS": str(artifacts)}
    counts = run_node_tests("explorer.test.mjs", env=env)
    assert counts["pass"] == counts["tests"] == 8, counts
    assert screenshot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
