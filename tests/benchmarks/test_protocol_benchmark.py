"""The protocol benchmark runs and reports both rates (timings are not asserted)."""

from __future__ import annotations

import pytest

from benchmarks import protocol


def test_protocol_benchmark_reports_rates_and_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    result = protocol.main(["--seconds", "0.02", "--repeat", "1"])
    assert result["protocol"] > 0 and result["least_python"] > 0 and result["floor"] > 0
    assert "protocol cost / floor" in capsys.readouterr().out
