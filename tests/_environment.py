"""The environment of a process that a test starts."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SETTINGS_PREFIX = "TRIO_REST_"


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment, less every ``TRIO_REST_`` setting, plus ``extra``.

    A server that a test starts sees only the settings the test gives it: a ``TRIO_REST_`` variable
    left in the shell that runs the tests would otherwise change what it serves, or make it warn.
    ``PYTHONPATH`` finds this checkout's two packages.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith(SETTINGS_PREFIX)}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "protocol")])
    env.update(extra or {})
    return env
