"""The push benchmark runs and reports every subscriber's deliveries (no figure is asserted)."""

from __future__ import annotations

from benchmarks.push import main, measure


async def test_measure_reports_rates_and_delays() -> None:
    result = await measure(5, 20)
    assert result["delivered_per_s"] > 0
    assert 0 <= result["p50_ms"] <= result["p99_ms"]


def test_main_prints_one_row_per_n(capsys: object) -> None:
    results = main(["--subscribers", "2,3", "--notifications", "5", "--repeat", "1"])
    assert sorted(results) == [2, 3]
