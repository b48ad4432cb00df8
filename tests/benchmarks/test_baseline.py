"""``run --baseline REV``: its options, its rows, its worktree and its ratios (no server is run).

The worktree tests use a throwaway repository in ``tmp_path``, never this one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import benchmarks.__main__ as cli
from benchmarks._baseline import (
    BaselineError,
    Worktree,
    check_imports,
    is_trio_rest,
    resolve,
    with_baselines,
    worktree,
    worktree_path,
)
from benchmarks._report import compare_baselines, format_markdown, summarize
from benchmarks._servers import SERVERS, ServerProcess, project_env

from ._fakes import fake_doc, fake_sample

TREE = Worktree(rev="HEAD~3", commit="d2867db" + "0" * 33, short="d2867db", path=Path("/tmp/wt"))


def test_run_parses_the_baseline_options() -> None:
    args = cli._parser().parse_args(
        ["run", "--quick", "--baseline", "HEAD~3", "--keep-baseline", "--baseline-dir", "/var/tmp"]
    )
    assert (args.baseline, args.keep_baseline, args.baseline_dir) == ("HEAD~3", True, "/var/tmp")
    plain = cli._parser().parse_args(["run"])
    assert (plain.baseline, plain.keep_baseline, plain.baseline_dir) == (None, False, None)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--servers", "websockets,picows", "--baseline", "HEAD"], "select trio-rest"),
        (["--keep-baseline"], "go with --baseline"),
        (["--baseline-dir", "/tmp"], "go with --baseline"),
        (["--servers", "fastapi", "--no-competitors"], "none of the selected servers"),
    ],
)
def test_run_refuses_a_baseline_it_cannot_use_before_doing_anything(
    argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def untouchable(*args: object, **kwargs: object) -> None:
        raise AssertionError("nothing may be checked out or run")

    monkeypatch.setattr(cli, "worktree", untouchable)
    monkeypatch.setattr(cli, "run", untouchable)
    with pytest.raises(SystemExit, match=message):
        cli.main(["run", "--results", str(tmp_path), *argv])


def test_each_trio_rest_row_gets_its_baseline_row_right_after_it() -> None:
    rows = with_baselines(SERVERS, TREE)
    names = [row.name for row in rows]
    assert names[:4] == [
        "trio-rest-websockets",
        "trio-rest-websockets@d2867db",
        "trio-rest-wsproto",
        "trio-rest-wsproto@d2867db",
    ]
    assert names[4:] == [spec.name for spec in SERVERS[2:]]  # the others, unchanged and in order
    current, baseline = rows[0], rows[1]
    assert baseline.label == "trio-rest (websockets) @d2867db"
    assert (baseline.root, baseline.baseline_of) == ("/tmp/wt", "trio-rest-websockets")
    assert (baseline.module, baseline.args, baseline.key, baseline.competitor) == (
        current.module,
        current.args,
        current.key,
        False,
    )
    assert (current.root, current.baseline_of) == (None, None)
    assert not is_trio_rest(baseline)  # a baseline row gets no baseline of its own
    assert with_baselines([SERVERS[4]], TREE) == [SERVERS[4]]  # nor does a competitor


def test_a_baseline_server_runs_from_its_worktree_with_the_same_interpreter(tmp_path: Path) -> None:
    env = project_env("/tmp/wt")
    assert env["PYTHONPATH"].split(os.pathsep)[:2] == ["/tmp/wt", "/tmp/wt/protocol"]
    baseline = with_baselines(SERVERS[:1], TREE)[1]
    server = ServerProcess(baseline, python=sys.executable, port=9, log=tmp_path / "log")
    assert server.argv[:3] == [sys.executable, "-m", "trio_rest"]


def test_check_imports_refuses_a_worktree_that_would_import_this_checkout(tmp_path: Path) -> None:
    for package in ("trio_rest", "protocol/trio_rest_protocol", "benchmarks"):
        (tmp_path / package).mkdir(parents=True)
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "benchmarks" / "apps.py").write_text("")
    check_imports(tmp_path, sys.executable)
    # Without its own, the worktree would get this checkout's (the venv's editable install).
    (tmp_path / "protocol/trio_rest_protocol/__init__.py").unlink()
    (tmp_path / "protocol/trio_rest_protocol").rmdir()
    with pytest.raises(BaselineError, match="imports trio_rest_protocol from"):
        check_imports(tmp_path, sys.executable)


def _git(repo: Path, *args: str) -> str:
    identity = [
        "-c",
        "user.name=bench",
        "-c",
        "user.email=bench@example.invalid",
        "-c",
        "commit.gpgsign=false",
    ]
    out = subprocess.run(["git", *identity, *args], cwd=repo, capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    for text in ("before", "after"):
        (repo / "version.txt").write_text(text)
        _git(repo, "add", "version.txt")
        _git(repo, "commit", "-q", "-m", text)
    return repo


def test_worktree_checks_out_the_commit_and_removes_it(repo: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    commit, short = resolve("HEAD~1", repo)
    assert commit == _git(repo, "rev-parse", "HEAD~1") and commit.startswith(short)
    with worktree("HEAD~1", parent=tmp_path / "trees", repo=repo, log=lines.append) as tree:
        assert tree.path == worktree_path(commit, tmp_path / "trees")
        assert (tree.path / "version.txt").read_text() == "before"
        assert not tree.reused
        assert json.dumps(tree.describe())
    assert not tree.path.exists()
    assert str(tree.path) not in _git(repo, "worktree", "list")
    assert (repo / "version.txt").read_text() == "after"  # the checkout itself is untouched


def test_a_kept_worktree_is_reused_unless_it_changed(repo: Path, tmp_path: Path) -> None:
    parent = tmp_path / "trees"
    with worktree("HEAD~1", parent=parent, keep=True, repo=repo, log=print) as first:
        pass
    assert first.path.exists()
    with worktree("HEAD~1", parent=parent, keep=True, repo=repo, log=print) as second:
        assert second.reused and second.path == first.path
    (first.path / "version.txt").write_text("edited")
    with (
        pytest.raises(BaselineError, match="not a clean worktree"),
        worktree("HEAD~1", parent=parent, repo=repo, log=print),
    ):
        pass
    assert (first.path / "version.txt").read_text() == "edited"  # refused, not overwritten
    _git(repo, "worktree", "remove", "--force", str(first.path))


def test_worktree_refuses_a_revision_that_names_no_commit(repo: Path, tmp_path: Path) -> None:
    with (
        pytest.raises(BaselineError, match="no such commit"),
        worktree("no-such-branch", parent=tmp_path, repo=repo, log=print),
    ):
        pass


def test_each_trio_rest_row_is_divided_by_its_baseline_row() -> None:
    servers = [
        {"name": "t", "label": "T", "note": "trio-rest"},
        {"name": "t@abc", "label": "T @abc", "note": "before", "baseline_of": "t"},
        {"name": "w", "label": "W", "note": "a competitor"},
    ]
    runs = [
        fake_sample("t", 12_000.0, repeat=0, p50_ms=1.0),
        fake_sample("t@abc", 10_000.0, repeat=0, p50_ms=2.0),
        fake_sample("w", 30_000.0, repeat=0),
        fake_sample("t", 11_000.0, repeat=1, p50_ms=1.0),
        fake_sample("t@abc", 10_000.0, repeat=1, p50_ms=2.0),
        fake_sample("w", 30_000.0, repeat=1),
    ]
    doc = fake_doc(servers, runs, baseline={"rev": "HEAD~3", "short": "abc"})
    summary = summarize(doc)
    comparison = compare_baselines(doc, summary)
    assert list(comparison) == ["t"]
    t = comparison["t"]
    assert t["baseline"] == "t@abc"
    assert t["ratios"]["pipelined"]["rps"] == pytest.approx(1.15)  # median 11.5k over 10k
    assert t["ratios"]["pipelined"]["p50_ms"] == pytest.approx(0.5)
    cpu = (1e6 / 12_000 + 1e6 / 11_000) / 2 / (1e6 / 10_000)  # a median of CPU, not of rates
    assert t["ratios"]["pipelined"]["cpu_us_per_req"] == pytest.approx(cpu)
    assert t["ratios"]["idle"]["kib_per_conn"] == pytest.approx(1.0)
    assert t["per_repeat"]["pipelined"]["rps"] == pytest.approx([1.2, 1.1])
    assert t["ratios"]["fan_in"]["rps"] is None and t["per_repeat"]["fan_in"]["rps"] == []
    json.dumps(comparison)

    table = format_markdown(doc, summary)
    assert "commit None against abc (`--baseline HEAD~3`)" in table
    assert "Against the baseline abc (`--baseline HEAD~3`)" in table
    assert "| T vs @abc | 1.15x (1.10 to 1.20) | 0.50x (0.50 to 0.50) |" in table
    assert "| T @abc | 10.0k (0.87x) |" in table  # in the main table, like any row
    assert "| W vs" not in table
