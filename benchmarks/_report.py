"""Turn a run's raw document into medians, ratios and one Markdown table.

The table has a row per server and, for each number, the ratio to the
reference row (the first server, trio-rest with its default engine), so
``docs/performance.md`` can quote it as it is. When the run has baseline rows
(``--baseline REV``), a second table gives each trio-rest row's ratio to the
same server at that earlier commit, measured in the same run. Every ratio is
computed by `ratio`.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

__all__ = ["COLUMNS", "compare_baselines", "format_markdown", "ratio", "summarize"]

#: The table's columns: (header, step, field, formatter name).
COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("pipelined req/s", "pipelined", "rps", "rate"),
    ("p50 ms", "pipelined", "p50_ms", "ms"),
    ("p99 ms", "pipelined", "p99_ms", "ms"),
    ("CPU µs/req", "pipelined", "cpu_us_per_req", "us"),
    ("fan-in req/s", "fan_in", "rps", "rate"),
    ("p50 ms", "fan_in", "p50_ms", "ms"),
    ("p99 ms", "fan_in", "p99_ms", "ms"),
    ("CPU µs/req", "fan_in", "cpu_us_per_req", "us"),
    ("ping-pong p50 ms", "ping_pong", "p50_ms", "ms3"),
    ("p99 ms", "ping_pong", "p99_ms", "ms3"),
    ("handshakes/s", "handshakes", "rate", "rate"),
    ("KiB/idle conn", "idle", "kib_per_conn", "kib"),
)

_UTILISATION: tuple[tuple[str, str, str], ...] = (
    ("pipelined server", "pipelined", "server_util"),
    ("pipelined load gen.", "pipelined", "loadgen_util"),
    ("fan-in server", "fan_in", "server_util"),
    ("fan-in load gen.", "fan_in", "loadgen_util"),
    ("handshakes server", "handshakes", "server_util"),
)


def _median(values: list[float]) -> float | None:
    clean = [v for v in values if isinstance(v, int | float) and not math.isnan(v)]
    return statistics.median(clean) if clean else None


def summarize(doc: dict[str, Any]) -> dict[str, dict[str, dict[str, float | None]]]:
    """The median of every measured number, per server and step, over the repeats.

    Args:
        doc: what `_runner.run` returned.

    Returns:
        ``{server: {step: {field: median or None}}}``; a step that failed in
        every repeat has None everywhere, and ``failures`` counts the failed
        repeats of each step.
    """
    summary: dict[str, dict[str, dict[str, float | None]]] = {}
    for spec in doc["servers"]:
        name = spec["name"]
        samples = [run for run in doc["runs"] if run["server"] == name]
        steps: dict[str, dict[str, float | None]] = {}
        for step in ("idle", "pipelined", "fan_in", "ping_pong", "handshakes"):
            measured = [s[step] for s in samples if isinstance(s.get(step), dict) and "error" not in s[step]]
            fields = sorted({field for m in measured for field in m})
            steps[step] = {
                field: _median([m[field] for m in measured if m.get(field) is not None]) for field in fields
            }
            steps[step]["failures"] = float(len(samples) - len(measured))
        summary[name] = steps
    return summary


def ratio(value: float | None, reference: float | None) -> float | None:
    """`value` divided by `reference`; None when either is missing or the reference is 0."""
    if value is None or reference is None or reference == 0:
        return None
    return value / reference


def _value(sample: dict[str, Any] | None, step: str, field: str) -> float | None:
    measured = sample.get(step) if sample else None
    if not isinstance(measured, dict) or "error" in measured:
        return None
    value = measured.get(field)
    return value if isinstance(value, int | float) else None


def compare_baselines(
    doc: dict[str, Any], summary: dict[str, dict[str, dict[str, float | None]]]
) -> dict[str, dict[str, Any]]:
    """Each row that has a baseline row, divided by it, for every number of the table.

    Args:
        doc: what `_runner.run` returned; a baseline row's spec names the row
            it is the baseline of (``baseline_of``).
        summary: what `summarize` returned for it.

    Returns:
        ``{row: {"baseline": baseline row, "ratios": {step: {field: ratio of the
        medians}}, "per_repeat": {step: {field: [ratio within each repeat]}}}}``;
        empty when the run has no baseline. A ratio above 1 is more requests
        per second, or more time or memory, than the baseline's.
    """
    samples = {(s["server"], s["repeat"]): s for s in doc["runs"]}
    repeats = sorted({s["repeat"] for s in doc["runs"]})
    comparison: dict[str, dict[str, Any]] = {}
    for spec in doc["servers"]:
        row, baseline = spec.get("baseline_of"), spec["name"]
        if not row:
            continue
        ratios: dict[str, dict[str, float | None]] = {}
        per_repeat: dict[str, dict[str, list[float]]] = {}
        for _, step, field, _ in COLUMNS:
            ratios.setdefault(step, {})[field] = ratio(
                summary.get(row, {}).get(step, {}).get(field),
                summary.get(baseline, {}).get(step, {}).get(field),
            )
            per_repeat.setdefault(step, {})[field] = [
                r
                for repeat in repeats
                if (
                    r := ratio(
                        _value(samples.get((row, repeat)), step, field),
                        _value(samples.get((baseline, repeat)), step, field),
                    )
                )
                is not None
            ]
        comparison[row] = {"baseline": baseline, "ratios": ratios, "per_repeat": per_repeat}
    return comparison


def _number(value: float, kind: str) -> str:
    if kind == "rate":
        return f"{value / 1000:.1f}k" if value >= 1000 else f"{value:.0f}"
    if kind == "ms":
        return f"{value:.2f}"
    if kind == "ms3":
        return f"{value:.3f}"
    return f"{value:.1f}"


def _cell(value: float | None, reference: float | None, kind: str, is_reference: bool) -> str:
    if value is None:
        return "—"
    text = _number(value, kind)
    r = ratio(value, reference)
    if is_reference or r is None:
        return text
    return f"{text} ({r:.2f}x)"


def _ratio_cell(median: float | None, per_repeat: list[float]) -> str:
    if median is None:
        return "—"
    if len(per_repeat) < 2:
        return f"{median:.2f}x"
    return f"{median:.2f}x ({min(per_repeat):.2f} to {max(per_repeat):.2f})"


def _baseline_table(doc: dict[str, Any], comparison: dict[str, dict[str, Any]]) -> list[str]:
    """The lines of the against-the-baseline table (none when the run has no baseline)."""
    if not comparison:
        return []
    labels = {spec["name"]: spec["label"] for spec in doc["servers"]}
    baseline = doc["meta"].get("baseline")
    which = f"{baseline['short']} (`--baseline {baseline['rev']}`)" if baseline else "rows"
    lines = [
        "",
        f"Against the baseline {which}, "
        "measured in this run, interleaved: each trio-rest row's median divided by the same server's "
        "median at the baseline commit; in brackets, the lowest and highest ratio within one repeat. "
        "Above 1.00x is more requests or handshakes per second (better), or more milliseconds, "
        "CPU µs or KiB (worse).",
        "",
        "| server | " + " | ".join(header for header, *_ in COLUMNS) + " |",
        "|---|" + "---:|" * len(COLUMNS),
    ]
    for row, compared in comparison.items():
        cells = [
            _ratio_cell(compared["ratios"][step][field], compared["per_repeat"][step][field])
            for _, step, field, _ in COLUMNS
        ]
        against = labels[compared["baseline"]].removeprefix(labels[row]).strip()
        lines.append(f"| {labels[row]} vs {against} | " + " | ".join(cells) + " |")
    return lines


def format_markdown(doc: dict[str, Any], summary: dict[str, dict[str, dict[str, float | None]]]) -> str:
    """The run as Markdown: a header line, the table, a utilisation table and footnotes.

    Args:
        doc: what `_runner.run` returned.
        summary: what `summarize` returned for it.

    Returns:
        The Markdown text.
    """
    meta, config, specs = doc["meta"], doc["config"], doc["servers"]
    reference = specs[0]["name"] if specs else ""
    baseline = meta.get("baseline")
    against = f" against {baseline['short']} (`--baseline {baseline['rev']}`)" if baseline else ""
    lines = [
        f"trio-rest benchmarks ({meta['label']} run, {meta.get('started', '')}, "
        f"commit {meta.get('commit')}{against}): "
        f"Python {meta['python']}, {meta['cpu']}, {meta['cores']} cores, Linux {meta['kernel']}; "
        f"server pinned to CPU {meta['pinning']['server_cpu']}, load generator to CPU "
        f"{meta['pinning']['loadgen_cpu']}; medians of {config['repeats']} interleaved repeats, "
        f"{config['duration']:g} s windows after {config['warmup']:g} s warm-up.",
        "",
        "| server | " + " | ".join(header for header, *_ in COLUMNS) + " |",
        "|---|" + "---:|" * len(COLUMNS),
    ]
    ref = summary.get(reference, {})
    for spec in specs:
        row = summary.get(spec["name"], {})
        cells = [
            _cell(row.get(step, {}).get(field), ref.get(step, {}).get(field), kind, spec["name"] == reference)
            for _, step, field, kind in COLUMNS
        ]
        lines.append(f"| {spec['label']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"(nx) is the row's value divided by {specs[0]['label'] if specs else 'the reference'}'s. "
        f"Pipelined: {_workload(doc, 'pipelined')}; fan-in: {_workload(doc, 'fan_in')}; "
        f"ping-pong: {_workload(doc, 'ping_pong')}. "
        "CPU µs/req is the server's utime+stime (/proc/PID/stat) over the window divided by the replies; "
        f"handshakes/s counts open + upgrade + close cycles, {config['handshake_concurrency']} at a time; "
        f"KiB/idle conn is the server's RSS growth with {config['idle_connections']} idle connections, "
        "divided by their number.",
        *_baseline_table(doc, compare_baselines(doc, summary)),
        "",
        "Core utilisation during each window (1.00 = one core busy the whole time; a server below ~0.9 "
        "while the load generator is near 1.00 was limited by the load generator). *Other load* is the "
        "busiest of the two cores' time spent on processes other than the server and the load generator "
        f"(worst window, medians over repeats; a window above {config['max_foreign']:g} was measured again "
        "after waiting for quiet, up to "
        f"{config['retries']} times, and the least disturbed attempt kept):",
        "",
        "| server | " + " | ".join(header for header, *_ in _UTILISATION) + " | other load |",
        "|---|" + "---:|" * (len(_UTILISATION) + 1),
    ]
    for spec in specs:
        row = summary.get(spec["name"], {})
        cells = []
        for _, step, field in _UTILISATION:
            value = row.get(step, {}).get(field)
            cells.append("—" if value is None else f"{value:.2f}")
        steps = ("pipelined", "fan_in", "ping_pong", "handshakes")
        foreign = [v for step in steps if (v := row.get(step, {}).get("foreign")) is not None]
        cells.append(f"{max(foreign):.2f}" if foreign else "—")
        lines.append(f"| {spec['label']} | " + " | ".join(cells) + " |")
    failures = [
        f"{spec['label']}: {step} failed in {int(fails)} of {config['repeats']} repeats"
        for spec in specs
        for step, fields in summary.get(spec["name"], {}).items()
        if (fails := fields.get("failures"))
    ]
    lines += ["", "Servers:"]
    lines += [f"- {spec['label']}: {spec['note']}" for spec in specs]
    lines += ["", f"Versions: project {_versions(meta['project_versions'])}"]
    if meta.get("competitor_versions"):
        lines[-1] += f"; competitors {_versions(meta['competitor_versions'])}"
    if failures:
        lines += ["", "Failures (see the JSON for the messages): " + "; ".join(failures)]
    return "\n".join(lines)


def _workload(doc: dict[str, Any], name: str) -> str:
    shape = doc["workloads"][name]
    return f"{shape['sockets']} sockets x {shape['in_flight']} in flight"


def _versions(versions: dict[str, str]) -> str:
    return ", ".join(f"{name} {version}" for name, version in versions.items())
