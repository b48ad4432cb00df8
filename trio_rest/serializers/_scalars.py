"""Fields for scalar values: text, numbers, booleans, choices and UUIDs.

Each field checks the JSON shape of its input itself (JSON has no decimals or
UUIDs, and cattrs' primitive hooks are lenient: ``bool("false")`` is True), then
leaves the conversion of non-JSON types to the serializer's cattrs converter,
so an application's own structure hooks apply. Messages follow Django REST
framework's wording, which clients of such APIs already expect.
"""

from __future__ import annotations

import decimal
import enum
import math
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final

from ._field import Field

if TYPE_CHECKING:
    from ._serializer import Serializer

__all__ = [
    "BooleanField",
    "CharField",
    "ChoiceField",
    "DecimalField",
    "EnumField",
    "FloatField",
    "IntegerField",
    "UUIDField",
]

# Longer numeric strings are refused before parsing: int() of a huge digit
# string is quadratic, an easy way to burn a worker thread.
_MAX_NUMBER_STRING: Final = 1000
_INT_TEXT: Final = re.compile(r"[+-]?[0-9]+(?:\.0*)?")
# "Not found" for lookups where None is a legitimate value.
_MISSING: Final = object()


class CharField(Field):
    """A string; numbers are accepted and turned into text, as in Django REST framework.

    Args:
        max_length: the most characters allowed (a ``String(n)`` column's n).
        min_length: the fewest characters allowed.
        allow_blank: whether ``""`` (or only whitespace, when trimming) is valid.
        trim_whitespace: strip leading and trailing whitespace first.
        **kwargs: the `Field` options.

    Raises:
        ConfigurationError: as `Field`.
    """

    default_error_messages: ClassVar[Mapping[str, str]] = {
        "invalid": "Not a valid string.",
        "blank": "This field may not be blank.",
        "max_length": "Ensure this field has no more than {max_length} characters.",
        "min_length": "Ensure this field has at least {min_length} characters.",
        "null_characters": "Null characters are not allowed.",
    }

    def __init__(
        self,
        *,
        max_length: int | None = None,
        min_length: int | None = None,
        allow_blank: bool = False,
        trim_whitespace: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_length = max_length
        self.min_length = min_length
        self.allow_blank = allow_blank
        self.trim_whitespace = trim_whitespace

    def to_internal_value(self, data: Any, serializer: Serializer) -> str:
        if isinstance(data, bool) or not isinstance(data, str | int | float):
            self.fail("invalid")
        value = str(data)
        if self.trim_whitespace:
            value = value.strip()
        if not value:
            if not self.allow_blank:
                self.fail("blank")
            return ""
        # PostgreSQL refuses NUL in text; without this check it is a 500.
        if "\x00" in value:
            self.fail("null_characters")
        if self.max_length is not None and len(value) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        if self.min_length is not None and len(value) < self.min_length:
            self.fail("min_length", min_length=self.min_length)
        return value

    def to_representation(self, value: Any, serializer: Serializer) -> str:
        return value if type(value) is str else str(value)


class _Bounded(Field):
    """A number with optional inclusive bounds."""

    default_error_messages: ClassVar[Mapping[str, str]] = {
        "max_value": "Ensure this value is less than or equal to {max_value}.",
        "min_value": "Ensure this value is greater than or equal to {min_value}.",
        "max_string_length": "String value too large.",
    }

    def __init__(self, *, max_value: Any = None, min_value: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_value = max_value
        self.min_value = min_value

    def check_bounds(self, value: Any) -> Any:
        """Return `value` if it lies within the bounds.

        Raises:
            ValidationError: when it does not.
        """
        if self.max_value is not None and value > self.max_value:
            self.fail("max_value", max_value=self.max_value)
        if self.min_value is not None and value < self.min_value:
            self.fail("min_value", min_value=self.min_value)
        return value


class IntegerField(_Bounded):
    """An integer; integral floats (``3.0``) and numeric strings (``"3"``) are accepted.

    Args:
        max_value: the largest value allowed (inclusive).
        min_value: the smallest value allowed (inclusive).
        **kwargs: the `Field` options.

    Raises:
        ConfigurationError: as `Field`.
    """

    default_error_messages: ClassVar[Mapping[str, str]] = {"invalid": "A valid integer is required."}

    def to_internal_value(self, data: Any, serializer: Serializer) -> int:
        # bool is an int subclass, but `true` is not a number to a JSON client.
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, int):
            value = data
        elif isinstance(data, float):
            if not data.is_integer():
                self.fail("invalid")
            value = int(data)
        elif isinstance(data, str):
            if len(data) > _MAX_NUMBER_STRING:
                self.fail("max_string_length")
            text = data.strip()
            if _INT_TEXT.fullmatch(text) is None:
                self.fail("invalid")
            value = int(text.partition(".")[0])
        else:
            self.fail("invalid")
        return int(self.check_bounds(value))

    def to_representation(self, value: Any, serializer: Serializer) -> int:
        return value if type(value) is int else int(value)


class FloatField(_Bounded):
    """A finite floating-point number; numeric strings are accepted.

    Args:
        max_value: the largest value allowed (inclusive).
        min_value: the smallest value allowed (inclusive).
        **kwargs: the `Field` options.

    Raises:
        ConfigurationError: as `Field`.
    """

    default_error_messages: ClassVar[Mapping[str, str]] = {"invalid": "A valid number is required."}

    def to_internal_value(self, data: Any, serializer: Serializer) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float | str):
            self.fail("invalid")
        if isinstance(data, str) and len(data) > _MAX_NUMBER_STRING:
            self.fail("max_string_length")
        try:
            value = float(data.strip() if isinstance(data, str) else data)
        except (ValueError, OverflowError):
            self.fail("invalid")
        # NaN and infinities have no JSON form and compare oddly in databases.
        if not math.isfinite(value):
            self.fail("invalid")
        return float(self.check_bounds(value))

    def to_representation(self, value: Any, serializer: Serializer) -> float:
        return float(value)


class DecimalField(_Bounded):
    """An exact decimal number, written as a string by default (JSON numbers are binary floats).

    Args:
        max_digits: the most significant digits allowed (a ``Numeric``
            column's precision), or None.
        decimal_places: the most digits after the point (its scale), or
            None; values are written with exactly this many.
        coerce_to_string: write values as strings (``"9.50"``); False keeps
            `decimal.Decimal` objects.
        max_value: the largest value allowed (inclusive).
        min_value: the smallest value allowed (inclusive).
        **kwargs: the `Field` options.

    Raises:
        ConfigurationError: as `Field`.
    """

    default_error_messages: ClassVar[Mapping[str, str]] = {
        "invalid": "A valid number is required.",
        "max_digits": "Ensure that there are no more than {max_digits} digits in total.",
        "max_decimal_places": "Ensure that there are no more than {max_decimal_places} decimal places.",
        "max_whole_digits": (
            "Ensure that there are no more than {max_whole_digits} digits before the decimal point."
        ),
    }

    def __init__(
        self,
        *,
        max_digits: int | None = None,
        decimal_places: int | None = None,
        coerce_to_string: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_digits = max_digits
        self.decimal_places = decimal_places
        self.coerce_to_string = coerce_to_string
        self._quantum = None if decimal_places is None else decimal.Decimal(1).scaleb(-decimal_places)

    def to_internal_value(self, data: Any, serializer: Serializer) -> decimal.Decimal:
        if isinstance(data, bool) or not isinstance(data, int | float | str | decimal.Decimal):
            self.fail("invalid")
        if isinstance(data, str):
            if len(data) > _MAX_NUMBER_STRING:
                self.fail("max_string_length")
            data = data.strip()
        try:
            value = serializer.converter.structure(data, decimal.Decimal)
        except Exception:  # the converter's hook may raise anything for bad text
            self.fail("invalid")
        if not isinstance(value, decimal.Decimal) or not value.is_finite():
            self.fail("invalid")
        self._check_precision(value)
        self.check_bounds(value)
        return value if self._quantum is None else value.quantize(self._quantum)

    def _check_precision(self, value: decimal.Decimal) -> None:
        _, digits, exponent = value.as_tuple()
        assert isinstance(exponent, int)  # finite values only
        if exponent >= 0:
            total, places = len(digits) + exponent, 0
        else:
            places = -exponent
            total = max(len(digits), places)
        whole = total - places
        if self.max_digits is not None and total > self.max_digits:
            self.fail("max_digits", max_digits=self.max_digits)
        if self.decimal_places is not None and places > self.decimal_places:
            self.fail("max_decimal_places", max_decimal_places=self.decimal_places)
        if self.max_digits is not None and self.decimal_places is not None:
            allowed = self.max_digits - self.decimal_places
            if whole > allowed:
                self.fail("max_whole_digits", max_whole_digits=allowed)

    def to_representation(self, value: Any, serializer: Serializer) -> Any:
        if not isinstance(value, decimal.Decimal):
            value = decimal.Decimal(str(value))
        if self._quantum is not None:
            value = value.quantize(self._quantum)
        return format(value, "f") if self.coerce_to_string else value


# True == 1 and False == 0 as set members, so the booleans are in these too.
_TRUE: Final[frozenset[object]] = frozenset(
    {"t", "T", "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "1", 1}
)
_FALSE: Final[frozenset[object]] = frozenset(
    {"f", "F", "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", "0", 0}
)


class BooleanField(Field):
    """A boolean; also accepts the usual spellings (``"true"``, ``"off"``, ``1``, ``"0"``...).

    Args:
        **kwargs: the `Field` options.

    Raises:
        ConfigurationError: as `Field`.
    """

    default_error_messages: ClassVar[Mapping[str, str]] = {"invalid": "Must be a valid boolean."}

    def to_internal_value(self, data: Any, serializer: Serializer) -> bool:
        try:
            if data in _TRUE:
                return True
            if data in _FALSE:
                return False
        except TypeError:  # unhashable input: a list or an object
            pass
        self.fail("invalid")

    def to_representation(self, value: Any, serializer: Serializer) -> bool:
        return bool(value)


class ChoiceField(Field):
    """One value out of a fixed set; ``1`` and ``"1"`` both select the choice ``1``.

    Args:
        choices: the allowed values, or a mapping of value to label.
        allow_blank: whether ``""`` is valid even when it is not a choice.
        **kwargs: the `Field` options.

    Raises:
        ConfigurationError: as `Field`.
    """

    default_error_messages: ClassVar[Mapping[str, str]] = {
        "invalid_choice": '"{input}" is not a valid choice.',
        "blank": "This field may not be blank.",
    }

    def __init__(
        self, choices: Iterable[Any] | Mapping[Any, str], *, allow_blank: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.choices: dict[Any, str] = (
            dict(choices) if isinstance(choices, Mapping) else {value: str(value) for value in choices}
        )
        self.allow_blank = allow_blank
        # Keyed by text so that a number sent as a string still selects it.
        self._by_text = {str(value): value for value in self.choices}

    def to_internal_value(self, data: Any, serializer: Serializer) -> Any:
        if data == "" and self.allow_blank:
            return ""
        value = self._by_text.get(str(data), _MISSING) if isinstance(data, str | int | float) else _MISSING
        if value is _MISSING:
            self.fail("invalid_choice", input=data)
        return value

    def to_representation(self, value: Any, serializer: Serializer) -> Any:
        return self._by_text.get(str(value), value)


class EnumField(ChoiceField):
    """A member of a Python `enum.Enum`, read and written as the member's value.

    Input is structured into the enum by the serializer's converter (so custom
    enum hooks apply); the text of a value also selects it.

    Args:
        enum_class: the enum.
        **kwargs: the `ChoiceField` and `Field` options.

    Raises:
        ConfigurationError: as `Field`.
    """

    def __init__(self, enum_class: type[enum.Enum], **kwargs: Any) -> None:
        super().__init__([member.value for member in enum_class], **kwargs)
        self.enum_class = enum_class

    def to_internal_value(self, data: Any, serializer: Serializer) -> Any:
        if isinstance(data, self.enum_class):
            return data
        if data == "" and self.allow_blank:
            return ""
        value: Any
        try:
            value = serializer.converter.structure(data, self.enum_class)
        except Exception:  # cattrs raises ValueError; a custom hook may raise anything
            value = _MISSING
        if not isinstance(value, self.enum_class):
            choice = super().to_internal_value(data, serializer)
            value = self.enum_class(choice)
        return value

    def to_representation(self, value: Any, serializer: Serializer) -> Any:
        return value.value if isinstance(value, enum.Enum) else value


class UUIDField(Field):
    """A UUID, written in its canonical hyphenated form.

    Args:
        as_uuid: validated values are `uuid.UUID` objects (True) or strings.
        **kwargs: the `Field` options.

    Raises:
        ConfigurationError: as `Field`.
    """

    default_error_messages: ClassVar[Mapping[str, str]] = {"invalid": '"{value}" is not a valid UUID.'}

    def __init__(self, *, as_uuid: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.as_uuid = as_uuid

    def to_internal_value(self, data: Any, serializer: Serializer) -> Any:
        if isinstance(data, uuid.UUID):
            value = data
        else:
            if not isinstance(data, str):
                self.fail("invalid", value=data)
            try:
                value = serializer.converter.structure(data, uuid.UUID)
            except Exception:  # uuid.UUID raises ValueError; a custom hook may raise anything
                self.fail("invalid", value=data)
        return value if self.as_uuid else str(value)

    def to_representation(self, value: Any, serializer: Serializer) -> str:
        return str(value) if isinstance(value, uuid.UUID) else str(uuid.UUID(str(value)))
