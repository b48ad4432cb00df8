"""RFC 6455 conformance of both engines: the Autobahn cases, run by kosoku, against the server in echo mode.

Groups 12 and 13 (permessage-deflate) are excluded: the engines negotiate no extensions.
Counts of NON-STRICT cases vary from run to run, so only failures are asserted.
"""

from __future__ import annotations

import collections
import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from trio_rest import Server
from trio_rest._engine import ENGINE_NAMES
from trio_rest.testing import serve_echo

pytestmark = [pytest.mark.trio, pytest.mark.conformance]

ACCEPTABLE = {"OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED"}
KOSOKU = Path(sys.executable).with_name("kosoku")


@pytest.mark.parametrize("engine_name", ENGINE_NAMES)
async def test_autobahn_cases(
    engine_name: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    record_property: Callable[[str, object], None],
) -> None:
    if not KOSOKU.exists():
        pytest.skip(f"kosoku not installed next to {sys.executable} (pip install kosoku==0.1.0)")
    with trio.fail_after(300):
        async with trio.open_nursery() as nursery:
            server: Server = await nursery.start(functools.partial(serve_echo, engine=engine_name))
            started = time.perf_counter()
            command = [
                str(KOSOKU),
                f"127.0.0.1:{server.port}",
                "-x",
                "12.*",
                "-x",
                "13.*",
                "-o",
                str(tmp_path),
            ]
            # kosoku exits 1 when a case fails: the report below says which, so no check.
            process = await trio.run_process(command, capture_stdout=True, capture_stderr=True, check=False)
            wall_time = time.perf_counter() - started
            nursery.cancel_scope.cancel()

    report = tmp_path / "index.json"
    assert report.exists(), f"kosoku wrote no report (exit {process.returncode}): {process.stderr!r}"
    index = json.loads(report.read_text())
    cases = {case_id: case for agent in index.values() for case_id, case in agent.items()}
    counts = collections.Counter(case["behavior"] for case in cases.values())
    failing = sorted(
        f"{case_id}: behavior={case['behavior']} behaviorClose={case['behaviorClose']}"
        for case_id, case in cases.items()
        if case["behavior"] not in ACCEPTABLE or case["behaviorClose"] not in ACCEPTABLE
    )
    record_property("kosoku_wall_time_s", round(wall_time, 1))
    with capsys.disabled():
        print(f"\n{engine_name}: {len(cases)} cases in {wall_time:.1f} s: {dict(counts)}")
    assert cases, "kosoku wrote no case results"
    assert not failing, f"{len(failing)} failing cases:\n" + "\n".join(failing)
