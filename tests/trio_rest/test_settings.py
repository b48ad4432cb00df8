"""Every limit has a default and is validated."""

from __future__ import annotations

import pytest

from trio_rest import ConfigurationError, Settings


def test_defaults() -> None:
    settings = Settings()
    assert settings.engine == "websockets"
    assert settings.max_message_size == 2**20 and settings.max_frame_size == 4 * 2**20
    assert settings.max_concurrency == 32 and settings.max_in_flight == 256
    assert settings.request_timeout == 60.0


@pytest.mark.parametrize(
    "options",
    [
        {"engine": "tornado"},
        {"max_concurrency": 0},
        {"ping_interval": -1},
        {"max_message_size": 10, "max_frame_size": 5},
    ],
)
def test_invalid_settings(options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        Settings(**options)  # type: ignore[arg-type]


def test_no_request_timeout() -> None:
    assert Settings(request_timeout=None).request_timeout is None
