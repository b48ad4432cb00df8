"""The competitors' virtual environment: created and filled by the harness, never a project dependency.

It lives in ``.benchmarks-venv/`` at the repository root (gitignored). A stamp
file records what was installed; the venv is (re)built only when the pinned
lists below change. aiorest-ws 1.1.1 goes in with ``--no-deps``: its pinned
autobahn 0.16 no longer imports on Python 3.7+, so a current autobahn is
installed beside it (see ``shared/PEERS.md``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ._servers import REPO

__all__ = ["COMPETITORS", "NO_DEPS", "VENV", "ensure_venv", "installed_versions"]

#: Where the competitors live.
VENV = REPO / ".benchmarks-venv"

#: What the competitor launchers import (with their own dependencies).
COMPETITORS = (
    "websockets>=17,<18",
    "uvicorn>=0.30",
    "starlette>=0.40",
    "picows>=2,<3",
    "orjson>=3.9",
    "autobahn>=24",
    # The frameworks users would pick instead (see shared/PEERS.md), at their current major
    # versions; Django 6 needs Python 3.12, so on 3.11 it is the 5.2 LTS.
    "fastapi>=0.115,<1",
    "python-socketio>=5,<6",
    "channels>=4,<5",
    "daphne>=4,<5",
    "django>=5.2,<7",
    "djangochannelsrestframework>=1,<2",
    # The broadcast benchmark's Redis rows: python-socketio's AsyncRedisManager (redis-py) and
    # Channels' channel layer.
    "redis>=5",
    "channels-redis>=4,<5",
)

#: Installed without dependencies (their declared pins cannot work today).
NO_DEPS = ("aiorest-ws==1.1.1",)

_STAMP = "trio-rest-benchmarks.json"


def _python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_venv(venv: Path = VENV, *, quiet: bool = True) -> Path:
    """Create or update the competitors' venv; return its interpreter.

    Args:
        venv: where it lives.
        quiet: pass ``-q`` to pip.

    Returns:
        The path of its ``python``.

    Raises:
        subprocess.CalledProcessError: venv creation or an install failed.
    """
    wanted = {"python": sys.version.split()[0], "competitors": COMPETITORS, "no_deps": NO_DEPS}
    stamp = venv / _STAMP
    python = _python(venv)
    if python.exists() and stamp.exists():
        try:
            if json.loads(stamp.read_text()) == json.loads(json.dumps(wanted)):
                return python
        except (OSError, ValueError):
            pass
    print(f"setting up the competitors' virtual environment in {venv} ...", flush=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    _pip(python, list(COMPETITORS), quiet=quiet)
    _pip(python, ["--no-deps", *NO_DEPS], quiet=quiet)
    stamp.write_text(json.dumps(wanted, indent=2))
    return python


def _pip(python: Path, args: list[str], *, quiet: bool) -> None:
    """``pip install`` into the venv; on failure, show pip's errors (minus its index warnings) and raise."""
    argv = [
        str(python),
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        *(["-q"] if quiet else []),
        *args,
    ]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        noise = ("WARNING: Location", "is ignored")
        shown = [line for line in result.stderr.splitlines() if not all(n in line for n in noise)]
        print("\n".join(shown[-30:]), file=sys.stderr)
        raise subprocess.CalledProcessError(result.returncode, argv, result.stdout, result.stderr)


_VERSIONS = """
import importlib.metadata as m, json, sys
out = {"python": sys.version.split()[0]}
for name in sys.argv[1:]:
    try:
        out[name] = m.version(name)
    except m.PackageNotFoundError:
        pass
print(json.dumps(out))
"""


def installed_versions(python: str, names: tuple[str, ...]) -> dict[str, str]:
    """The versions of `names` installed for the interpreter `python` (missing ones are left out)."""
    result = subprocess.run(
        [python, "-c", _VERSIONS, *names], check=True, capture_output=True, text=True, timeout=60
    )
    versions: dict[str, str] = json.loads(result.stdout)
    return versions
