"""Settings from the environment and the command line: ``TRIO_REST_<NAME>`` and ``--set name=value``.

Precedence, highest first: the command line, the environment, the `Settings` the App was
built with (and their defaults). Every field of `Settings` has its variable, named after it
in upper case: ``TRIO_REST_MAX_IN_FLIGHT=512``, ``TRIO_REST_REQUEST_TIMEOUT=none``,
``TRIO_REST_ALLOWED_ORIGINS=https://a.example,https://b.example``,
``TRIO_REST_AIOREST_WS_ERRORS=true``. The CLI's own options read theirs too:
``TRIO_REST_HOST``, ``TRIO_REST_PORT``, ``TRIO_REST_LOG_LEVEL``, ``TRIO_REST_CERTFILE``,
``TRIO_REST_KEYFILE``, ``TRIO_REST_WORKERS``, ``TRIO_REST_BROKER`` (and a worker of
``--workers`` finds its number in ``TRIO_REST_WORKER``). A value that does not parse, or that
the setting refuses, is a `ConfigurationError` naming the variable (or option), for one clear
line at start-up.
"""

from __future__ import annotations

import logging
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs

from ._errors import ConfigurationError
from ._settings import Settings

log = logging.getLogger("trio_rest")

__all__ = ["CLI_OPTIONS", "ENV_PREFIX", "configure"]

#: The prefix of the environment variables.
ENV_PREFIX: Final = "TRIO_REST_"

_TRUE, _FALSE = frozenset({"1", "true", "yes", "on"}), frozenset({"0", "false", "no", "off"})

#: Variables of the command line's own options (``TRIO_REST_PORT``...), not settings.
CLI_OPTIONS: Final = frozenset(
    {"host", "port", "log_level", "certfile", "keyfile", "workers", "broker", "worker", "supervisor"}
)


def configure(settings: Settings, environ: Mapping[str, str], options: Iterable[str] = ()) -> Settings:
    """Return `settings` with the environment's values over them, and `options` over those.

    Args:
        settings: what the code chose.
        environ: e.g. ``os.environ``; only ``TRIO_REST_*`` names are read.
        options: ``name=value`` strings (the CLI's ``--set``).

    Raises:
        ConfigurationError: an unknown ``--set`` name, a value that does not parse, or one
            the setting refuses. An unknown ``TRIO_REST_*`` variable is logged and ignored
            (an orchestrator may define some: Kubernetes names services' addresses so).
    """
    fields = typing.get_type_hints(Settings)  # name -> type, for every field
    changes: dict[str, tuple[Any, str]] = {}  # name -> (value, where it came from)
    for key, text in sorted(environ.items()):
        if key.startswith(ENV_PREFIX):
            name = key[len(ENV_PREFIX) :].lower()
            if name in CLI_OPTIONS:
                continue
            if name not in fields:  # e.g. Kubernetes' TRIO_REST_SERVICE_HOST for a service so named
                log.warning("%s is not a trio-rest setting: ignored", key)
                continue
            changes[name] = (_parse(fields, name, text, key), key)
    for option in options:
        name, sep, text = option.partition("=")
        name = name.strip()
        if not sep:
            raise ConfigurationError(f"--set {option!r}: expected name=value")
        changes[name] = (_parse(fields, name, text, f"--set {name}"), f"--set {name}")
    for name, (value, where) in changes.items():
        try:
            settings = attrs.evolve(settings, **{name: value})
        except ConfigurationError as exc:
            raise ConfigurationError(f"{where}: {exc}") from None
    return settings


def _parse(fields: Mapping[str, Any], name: str, text: str, where: str) -> Any:
    annotation = fields.get(name)
    if annotation is None:
        raise ConfigurationError(f"{where}: no such setting (known: {', '.join(sorted(fields))})")
    kinds = _kinds(annotation)
    value = text if name == "jwt_secret" else text.strip()  # a secret is taken as it is
    if type(None) in kinds and value.lower() in ("", "none"):
        return None
    try:
        if bool in kinds:
            lowered = value.lower()
            if lowered in _TRUE or lowered in _FALSE:
                return lowered in _TRUE
            raise ValueError("expected true or false")
        if int in kinds:
            return int(value)
        if float in kinds:
            return float(value)
        if tuple in kinds:
            return tuple(part.strip() for part in value.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigurationError(f"{where}={text!r}: {exc}") from None
    return value


def _kinds(annotation: Any) -> set[type]:
    """The plain types an annotation allows (``float | None`` -> {float, NoneType})."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return set().union(*(_kinds(arg) for arg in typing.get_args(annotation)))
    if origin is not None:
        return {origin}
    return {annotation}
