"""Every limit has a default and is validated."""

from __future__ import annotations

import attrs
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
        {"max_message_size": 10, "max_frame_size": 5},
    ],
)
def test_invalid_settings(options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        Settings(**options)  # type: ignore[arg-type]


# Every field but the engine's name and the switches is a number that must be positive.
SWITCHES = (
    "engine",
    "aiorest_ws_errors",
    "metrics",
    "notification_overflow",
    "allowed_origins",
    "jwt_secret",
    "jwt_algorithm",
    "jwt_issuer",
    "jwt_audience",
)
LIMITS = [field.name for field in attrs.fields(Settings) if field.name not in SWITCHES]


def test_every_limit_has_a_default() -> None:
    missing = [field.name for field in attrs.fields(Settings) if field.default is attrs.NOTHING]
    assert not missing and len(LIMITS) >= 10


@pytest.mark.parametrize("name", LIMITS)
@pytest.mark.parametrize("value", [0, -1, float("nan")])
def test_every_limit_must_be_positive(name: str, value: float) -> None:
    with pytest.raises(ConfigurationError, match=name):
        Settings(**{name: value})  # type: ignore[arg-type]


def test_none_is_no_request_timeout() -> None:
    # Documented: request_timeout=None means no limit, so the validator that
    # refuses 0 and negative values must let None through.
    Settings(request_timeout=None)


def test_none_is_refused_where_it_means_nothing() -> None:
    wrong = []
    for name in LIMITS:
        if name in ("request_timeout", "rate_limit", "rate_limit_per_address", "rate_limit_per_user"):
            continue
        try:
            Settings(**{name: None})
        except ConfigurationError:
            continue
        except TypeError:  # a crash while comparing, not the documented error
            pass
        wrong.append(name)
    assert not wrong, f"None accepted (or crashing) for {wrong}"
