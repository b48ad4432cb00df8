"""Fields for dates, datetimes and times, written and read as ISO 8601 text.

Parsing goes through the serializer's cattrs converter, whose hooks
(`trio_rest.configure_converter`) read ISO 8601.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from ._field import Field

if TYPE_CHECKING:
    from ._serializer import Serializer

__all__ = ["DateField", "DateTimeField", "TimeField"]


def _structure(field: Field, data: Any, cls: type, serializer: Serializer) -> Any:
    if not isinstance(data, str):
        field.fail("invalid")
    try:
        value: Any = serializer.converter.structure(data, cls)
    except Exception:  # fromisoformat raises ValueError; a custom hook may raise anything
        field.fail("invalid")
    return value


class DateField(Field):
    """A calendar date, as ``YYYY-MM-DD``.

    Args:
        **kwargs: the `Field` options.

    Raises:
        ConfigurationError: as `Field`.
    """

    default_error_messages: ClassVar[Mapping[str, str]] = {
        "invalid": "Date has wrong format. Use one of these formats instead: YYYY-MM-DD.",
        "datetime": "Expected a date but got a datetime.",
    }

    def to_internal_value(self, data: Any, serializer: Serializer) -> datetime.date:
        if isinstance(data, datetime.datetime):
            self.fail("datetime")
        if isinstance(data, datetime.date):
            return data
        value = _structure(self, data, datetime.date, serializer)
        if isinstance(value, datetime.datetime):
            self.fail("datetime")
        return value  # type: ignore[no-any-return]

    def to_representation(self, value: Any, serializer: Serializer) -> str:
        return value.isoformat()  # type: ignore[no-any-return]


class DateTimeField(Field):
    """A date and time, as ISO 8601 (``2024-05-01T12:30:00Z``); UTC is written as ``Z``.

    Args:
        timezone: True for an aware column (a naive input is taken as UTC),
            False for a naive one (an aware input is converted to UTC and
            its offset dropped), None to keep inputs as they are.
        **kwargs: the `Field` options.

    Raises:
        ConfigurationError: as `Field`.
    """

    default_error_messages: ClassVar[Mapping[str, str]] = {
        "invalid": (
            "Datetime has wrong format. Use one of these formats instead: "
            "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
        ),
    }

    def __init__(self, *, timezone: bool | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.timezone = timezone

    def to_internal_value(self, data: Any, serializer: Serializer) -> datetime.datetime:
        if isinstance(data, datetime.datetime):
            value = data
        else:
            value = _structure(self, data, datetime.datetime, serializer)
            if not isinstance(value, datetime.datetime):
                self.fail("invalid")
        aware = value.utcoffset() is not None
        # Databases disagree on mixing naive and aware values (PostgreSQL
        # shifts by the session time zone, SQLite drops the offset), so the
        # value is made to match the column.
        if self.timezone is True and not aware:
            return value.replace(tzinfo=datetime.UTC)
        if self.timezone is False and aware:
            return value.astimezone(datetime.UTC).replace(tzinfo=None)
        return value

    def to_representation(self, value: Any, serializer: Serializer) -> str:
        text: str = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text


class TimeField(Field):
    """A time of day, as ``hh:mm[:ss[.uuuuuu]]``.

    Args:
        **kwargs: the `Field` options.

    Raises:
        ConfigurationError: as `Field`.
    """

    default_error_messages: ClassVar[Mapping[str, str]] = {
        "invalid": "Time has wrong format. Use one of these formats instead: hh:mm[:ss[.uuuuuu]].",
    }

    def to_internal_value(self, data: Any, serializer: Serializer) -> datetime.time:
        if isinstance(data, datetime.time):
            return data
        value = _structure(self, data, datetime.time, serializer)
        if not isinstance(value, datetime.time):
            self.fail("invalid")
        return value

    def to_representation(self, value: Any, serializer: Serializer) -> str:
        return value.isoformat()  # type: ignore[no-any-return]
