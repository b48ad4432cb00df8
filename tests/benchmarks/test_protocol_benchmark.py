"""The protocol benchmark runs and reports both rates (timings are not asserted)."""

from __future__ import annotations

import pytest

from benchmarks import protocol


def test_protocol_benchmark_reports_rates_and_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    result = protocol.main(["--seconds", "0.02", "--repeat", "1"])
    assert all(result[name] > 0 for name in ("protocol", "least_api", "least_python", "floor"))
    assert "protocol cost / floor" in capsys.readouterr().out
