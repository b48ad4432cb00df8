"""Settings from TRIO_REST_* variables and --set, over the App's own; a bad value is one line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests._environment import child_env
from trio_rest import ConfigurationError, Settings
from trio_rest._config import configure

REPO = Path(__file__).resolve().parents[2]


def test_every_kind_of_setting_parses_from_the_environment() -> None:
    settings = Settings(max_in_flight=100).from_env(
        {
            "TRIO_REST_MAX_IN_FLIGHT": "512",
            "TRIO_REST_REQUEST_TIMEOUT": "none",
            "TRIO_REST_PING_INTERVAL": "2.5",
            "TRIO_REST_ALLOWED_ORIGINS": "https://a.example, https://b.example",
            "TRIO_REST_AIOREST_WS_ERRORS": "yes",
            "TRIO_REST_ENGINE": "wsproto",
            "PATH": "/usr/bin",  # not ours: ignored
        }
    )
    assert settings.max_in_flight == 512 and settings.request_timeout is None
    assert settings.ping_interval == 2.5 and settings.engine == "wsproto"
    assert settings.allowed_origins == ("https://a.example", "https://b.example")
    assert settings.aiorest_ws_errors is True
    assert Settings().from_env({}) == Settings()


def test_the_command_line_wins_over_the_environment_over_the_code() -> None:
    code = Settings(max_in_flight=100, max_depth=8)
    settings = configure(code, {"TRIO_REST_MAX_IN_FLIGHT": "200"}, ["max_in_flight=300"])
    assert (settings.max_in_flight, settings.max_depth) == (300, 8)
    assert configure(code, {"TRIO_REST_MAX_IN_FLIGHT": "200"}).max_in_flight == 200


@pytest.mark.parametrize(
    ("environ", "options", "message"),
    [
        ({"TRIO_REST_MAX_IN_FLIGHT": "abc"}, [], "TRIO_REST_MAX_IN_FLIGHT='abc'"),
        (
            {"TRIO_REST_MAX_IN_FLIGHT": "0"},
            [],
            "TRIO_REST_MAX_IN_FLIGHT: Settings.max_in_flight must be positive",
        ),
        ({}, ["max_inflight=5"], "--set max_inflight: no such setting"),
        ({"TRIO_REST_AIOREST_WS_ERRORS": "maybe"}, [], "expected true or false"),
        ({"TRIO_REST_MAX_DEPTH": "none"}, [], "TRIO_REST_MAX_DEPTH"),
        ({}, ["max_depth"], "expected name=value"),
        ({}, ["allowed_origins=not-an-origin"], "--set allowed_origins"),
    ],
)
def test_a_bad_value_names_where_it_came_from(
    environ: dict[str, str], options: list[str], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        configure(Settings(), environ, options)


def test_the_cli_says_a_bad_setting_in_one_line() -> None:
    for extra_env, args in (
        ({"TRIO_REST_MAX_IN_FLIGHT": "-1"}, []),
        ({}, ["--set", "read_size=lots"]),
        ({"TRIO_REST_JWT_SECRET": "too-short"}, []),  # refused at start-up, before serving
    ):
        done = subprocess.run(
            [sys.executable, "-m", "trio_rest", "run", "examples.hello:app", "--port", "0", *args],
            cwd=REPO,
            env=child_env(extra_env),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("trio-rest: "), done.stderr


def test_the_clis_own_options_read_the_environment_too() -> None:
    from tests.security._server_process import run_server

    assert configure(Settings(), {"TRIO_REST_PORT": "9000", "TRIO_REST_HOST": "::1"}) == Settings()
    assert configure(Settings(), {"TRIO_REST_SERVICE_HOST": "10.0.0.1"}) == Settings()  # not ours: ignored
    env = {"TRIO_REST_PORT": "0"}
    with run_server("", command=["-m", "trio_rest", "run", "examples.hello:app"], env=env) as server:
        assert server.port > 0  # it took TRIO_REST_PORT=0: a free port
