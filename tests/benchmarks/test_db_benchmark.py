"""The data-layer benchmark runs both servers and reports both rates (timings are not asserted)."""

from __future__ import annotations

import pytest

from benchmarks import db


def test_db_benchmark_reports_both_servers(capsys: pytest.CaptureFixture[str]) -> None:
    medians = db.main(["--seconds", "0.3", "--repeat", "1", "--connections", "2", "--window", "2"])
    for operation in ("GET", "POST"):
        assert medians[operation]["trio-rest"] > 0 and medians[operation]["hand-written"] > 0
    assert "trio-rest / hand-written" in capsys.readouterr().out
