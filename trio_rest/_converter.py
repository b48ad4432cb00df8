"""The cattrs converter of an `App`: how request bodies become typed values."""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

import cattrs
from cattrs.preconf.orjson import make_converter as make_orjson_converter
from cattrs.v import format_exception

from ._errors import ValidationError

#: The one message for a missing required field, in endpoints' bodies and in serializers.
REQUIRED = "This field is required."

__all__ = ["configure_converter", "make_converter", "structure_body"]


def make_converter() -> cattrs.Converter:
    """Build the converter an `App` uses, with our hooks added.

    Returns:
        A converter that forbids extra keys and knows UUIDs, dates, times
        and decimals (see `configure_converter`).
    """
    converter = make_orjson_converter(forbid_extra_keys=True)
    configure_converter(converter)
    return converter


def _structure_iso(cls: type) -> Any:
    def structure(value: Any, _: type) -> Any:
        if isinstance(value, cls):
            return value
        if not isinstance(value, str):
            raise TypeError(f"expected an ISO 8601 string, not {type(value).__name__}")
        return cls.fromisoformat(value)  # type: ignore[attr-defined]

    return structure


def configure_converter(converter: cattrs.Converter) -> None:
    """Add trio-rest's structure hooks to a converter.

    Args:
        converter: the converter to extend (modified in place).
    """
    converter.register_structure_hook(uuid.UUID, lambda value, _: uuid.UUID(str(value)))
    converter.register_structure_hook(decimal.Decimal, lambda value, _: decimal.Decimal(str(value)))
    for cls in (datetime.datetime, datetime.date, datetime.time):
        converter.register_structure_hook(cls, _structure_iso(cls))


def _field_of(path: str) -> str:
    # cattrs says where a value failed as "$.name" or "$.items[2].id"; the
    # reply groups messages by top-level field, as DRF does.
    if path in ("$", ""):
        return "non_field_errors"
    head = path[2:] if path.startswith("$.") else path.lstrip("$")
    return head.split(".")[0].split("[")[0] or "non_field_errors"


def _describe(exc: BaseException, type_: type | None) -> str:
    """cattrs' message for a failure, in the serializers' words where they have one."""
    if isinstance(exc, KeyError):
        return REQUIRED  # cattrs says "required field missing"
    return format_exception(exc, type_)


def structure_body(converter: cattrs.Converter, data: Any, cls: type) -> Any:
    """Structure a request body into `cls`, or raise a 400 naming every failing field.

    Args:
        converter: the app's converter.
        data: the request's body.
        cls: the type the endpoint declares.

    Returns:
        The structured value.

    Raises:
        ValidationError: with ``errors`` as ``{"field": ["message", ...]}``.
    """
    try:
        return converter.structure(data, cls)
    except Exception as exc:  # cattrs raises ClassValidationError, or plain errors for scalars
        errors: dict[str, list[str]] = {}
        for message in cattrs.transform_error(exc, format_exception=_describe):
            text, _, path = message.rpartition(" @ ")
            errors.setdefault(_field_of(path), []).append(text or message)
        raise ValidationError(errors=errors) from None
