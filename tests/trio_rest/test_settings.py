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
    # permessage-deflate is off unless asked for (docs/server.md says why).
    assert settings.permessage_deflate is False and settings.deflate_context_takeover is False
    assert settings.deflate_window_bits == 12 and settings.deflate_min_size == 256
    assert settings.explorer is False and settings.metrics is False  # both show the API to anyone


@pytest.mark.parametrize(
    "options",
    [
        {"engine": "tornado"},
        {"max_message_size": 10, "max_frame_size": 5},
        {"deflate_window_bits": 8},  # zlib cannot compress with a 256-byte window
        {"deflate_window_bits": 16},
        {"deflate_window_bits": 12.5},
        {"deflate_window_bits": True},
        {"permessage_deflate": "yes"},
        {"permessage_deflate": 1},
        {"deflate_context_takeover": None},
        {"deflate_min_size": 2.5},
        {"explorer": "on"},
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
    "explorer",
    "notification_overflow",
    "permessage_deflate",
    "deflate_context_takeover",
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


@pytest.mark.parametrize("bits", [9, 12, 15])
def test_every_window_size_zlib_can_compress_with_is_accepted(bits: int) -> None:
    assert Settings(permessage_deflate=True, deflate_window_bits=bits).deflate_window_bits == bits
