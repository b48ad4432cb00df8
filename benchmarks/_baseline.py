"""A baseline for before/after comparisons: an earlier commit, run in the same benchmark.

`worktree` checks the commit out as a detached git worktree (in the temporary
directory, named after the commit, so a kept one is found again and reused),
and removes it afterwards unless asked to keep it. `with_baselines` adds, after
each trio-rest row, the same server run from that worktree: same interpreter
and virtual environment, but the worktree as working directory and its
checkout and ``protocol/`` at the head of ``PYTHONPATH`` (so its
``trio_rest``, ``trio_rest_protocol`` and ``benchmarks.apps`` are the ones
imported). The runner then interleaves those rows like any other, and the
report divides each trio-rest row by its baseline row.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import attrs

from ._servers import REPO, ServerSpec, project_env

__all__ = [
    "BaselineError",
    "Worktree",
    "check_imports",
    "is_trio_rest",
    "resolve",
    "with_baselines",
    "worktree",
    "worktree_path",
]


class BaselineError(Exception):
    """The baseline could not be resolved, checked out or imported from."""


@attrs.frozen(kw_only=True)
class Worktree:
    """A detached checkout of the baseline commit.

    Attributes:
        rev: the revision as given (``HEAD~3``, a tag, a hash).
        commit: the full commit hash it resolved to.
        short: its abbreviated hash, used in row names.
        path: the worktree's directory.
        reused: True when it already existed at that commit.
    """

    rev: str
    commit: str
    short: str
    path: Path
    reused: bool = False

    def describe(self) -> dict[str, str | bool]:
        """What the run's JSON records about it."""
        return {
            "rev": self.rev,
            "commit": self.commit,
            "short": self.short,
            "path": str(self.path),
            "reused": self.reused,
        }


def _git(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "--no-optional-locks", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def resolve(rev: str, repo: Path = REPO) -> tuple[str, str]:
    """The full and the abbreviated hash of the commit `rev` names.

    Raises:
        BaselineError: `rev` names no commit.
    """
    full = _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", cwd=repo)
    if full.returncode != 0 or not full.stdout.strip():
        raise BaselineError(f"--baseline {rev}: no such commit")
    commit = full.stdout.strip()
    short = _git("rev-parse", "--short", commit, cwd=repo).stdout.strip() or commit[:7]
    return commit, short


def worktree_path(commit: str, parent: str | Path | None = None) -> Path:
    """Where the worktree of `commit` goes: one directory per commit, in `parent` (default: the temp dir)."""
    return Path(parent if parent is not None else tempfile.gettempdir()) / f"trio-rest-baseline-{commit[:12]}"


def _registered(path: Path, repo: Path) -> bool:
    listing = _git("worktree", "list", "--porcelain", cwd=repo).stdout
    wanted = os.path.realpath(path)
    return any(
        os.path.realpath(line.removeprefix("worktree ")) == wanted
        for line in listing.splitlines()
        if line.startswith("worktree ")
    )


def _reusable(path: Path, commit: str, repo: Path) -> bool:
    """True when `path` is a clean worktree of `repo`, detached at `commit`."""
    if not path.is_dir() or not _registered(path, repo):
        return False
    head = _git("rev-parse", "HEAD", cwd=path).stdout.strip()
    status = _git("status", "--porcelain", cwd=path)
    return head == commit and status.returncode == 0 and not status.stdout.strip()


@contextmanager
def worktree(
    rev: str,
    *,
    keep: bool = False,
    parent: str | Path | None = None,
    repo: Path = REPO,
    log: Callable[[str], None] = print,
) -> Iterator[Worktree]:
    """A detached worktree of `rev` for the length of the block.

    Reuses the one a previous run kept, if it is still clean and at the same
    commit; removes it on the way out unless `keep`.

    Args:
        rev: any revision git understands.
        keep: leave the worktree in place (a later run at the same commit reuses it).
        parent: the directory it goes in (default: the temporary directory).
        repo: the repository (default: this one).
        log: where progress lines go.

    Raises:
        BaselineError: `rev` names no commit, or its directory is taken by
            something else (a worktree at another commit, or with changes).
    """
    commit, short = resolve(rev, repo)
    path = worktree_path(commit, parent)
    reused = _reusable(path, commit, repo)
    if reused:
        log(f"baseline {rev} = {short}: reusing the worktree {path}")
    elif path.exists():
        raise BaselineError(
            f"{path} exists but is not a clean worktree at {short}; "
            f"remove it first (git worktree remove --force {path}, or rm -r)"
        )
    else:
        log(f"baseline {rev} = {short}: checking it out in {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        add = ["worktree", "add", "--detach"]
        if _registered(path, repo):  # registered, but its directory was deleted by hand
            add.append("--force")
        made = _git(*add, str(path), commit, cwd=repo)
        if made.returncode != 0:
            raise BaselineError(f"git worktree add {path} {short} failed:\n{made.stderr.strip()}")
    try:
        yield Worktree(rev=rev, commit=commit, short=short, path=path, reused=reused)
    finally:
        if keep:
            log(f"baseline worktree kept: {path}")
        else:
            removed = _git("worktree", "remove", "--force", str(path), cwd=repo)
            if removed.returncode != 0:
                log(f"could not remove the baseline worktree {path}: {removed.stderr.strip()}")


#: What a baseline row must import from its worktree rather than from this checkout.
_MODULES = ("trio_rest", "trio_rest_protocol", "benchmarks.apps")


def check_imports(root: Path, python: str) -> None:
    """Make sure a server started from `root` imports the project from there, not from this checkout.

    Starts `python` the way the runner starts a server (working directory and
    environment), imports the project's packages and compares their paths.

    Raises:
        BaselineError: one of them came from elsewhere, or could not be imported.
    """
    code = f"import importlib\nfor m in {_MODULES!r}:\n    print(importlib.import_module(m).__file__)"
    out = subprocess.run(
        [python, "-c", code], cwd=root, env=project_env(root), capture_output=True, text=True, timeout=60
    )
    if out.returncode != 0:
        raise BaselineError(f"the baseline at {root} does not import:\n{out.stderr.strip()}")
    real = Path(os.path.realpath(root))
    strays = [
        f"{module} from {file}"
        for module, file in zip(_MODULES, out.stdout.splitlines(), strict=False)
        if not Path(os.path.realpath(file)).is_relative_to(real)
    ]
    if strays:
        raise BaselineError(f"the baseline at {root} imports {'; '.join(strays)}")


def is_trio_rest(spec: ServerSpec) -> bool:
    """True for a trio-rest row of this checkout (the rows a baseline is added for)."""
    return spec.module == "trio_rest" and not spec.competitor and spec.root is None


def with_baselines(specs: Sequence[ServerSpec], tree: Worktree) -> list[ServerSpec]:
    """`specs`, with each trio-rest row followed by the same server run from `tree`.

    The baseline row is named ``NAME@SHORT`` and records the row it is the
    baseline of; every other field (module, arguments, correlation key) is the
    trio-rest row's.
    """
    rows: list[ServerSpec] = []
    for spec in specs:
        rows.append(spec)
        if is_trio_rest(spec):
            rows.append(
                attrs.evolve(
                    spec,
                    name=f"{spec.name}@{tree.short}",
                    label=f"{spec.label} @{tree.short}",
                    note=f"the same, from commit {tree.short} (`--baseline {tree.rev}`)",
                    root=str(tree.path),
                    baseline_of=spec.name,
                )
            )
    return rows
