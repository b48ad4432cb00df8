"""Fields that pass values through or delegate them: JSON, read-only, converter and method fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from .._errors import ConfigurationError
from ._field import Field

if TYPE_CHECKING:
    from ._serializer import Serializer

__all__ = ["ConverterField", "JSONField", "ReadOnlyField", "SerializerMethodField"]


class JSONField(Field):
    """Any JSON value (object, array, string, number, boolean), stored as is.

    Args:
        **kwargs: the `Field` options.

    Raises:
        ConfigurationError: as `Field`.
    """


class ReadOnlyField(Field):
    """An attribute written to the output unchanged and never accepted as input.

    ModelSerializer uses it for model properties named in ``Meta.fields``.

    Args:
        **kwargs: the `Field` options (``read_only`` is forced).

    Raises:
        ConfigurationError: as `Field`.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs["read_only"] = True
        super().__init__(**kwargs)


class ConverterField(Field):
    """A value of any type the serializer's cattrs converter can structure and unstructure.

    ModelSerializer falls back to it for column types it has no field for
    (custom ``TypeDecorator`` types, arrays...): register hooks for the type
    with the App's converter and the column just works.

    Args:
        python_type: the type to structure input into.
        **kwargs: the `Field` options.

    Raises:
        ConfigurationError: as `Field`.
    """

    default_error_messages: ClassVar[Mapping[str, str]] = {"invalid": "Invalid value."}

    def __init__(self, python_type: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.python_type = python_type

    def to_internal_value(self, data: Any, serializer: Serializer) -> Any:
        try:
            return serializer.converter.structure(data, self.python_type)
        except Exception:  # cattrs raises its own groups, hooks raise anything
            self.fail("invalid")

    def to_representation(self, value: Any, serializer: Serializer) -> Any:
        return serializer.converter.unstructure(value)


class SerializerMethodField(Field):
    """A read-only value computed by a method of the serializer, ``get_<field name>(obj)`` by default.

    Args:
        method_name: the method's name, when not ``get_<field name>``.
        **kwargs: the `Field` options (``read_only`` and ``source="*"`` are forced).

    Raises:
        ConfigurationError: when the serializer class has no such method
            (raised as its fields are built).
    """

    def __init__(self, method_name: str | None = None, **kwargs: Any) -> None:
        kwargs["read_only"] = True
        kwargs["source"] = "*"
        super().__init__(**kwargs)
        self.method_name = method_name

    def bind(self, field_name: str, serializer_class: type[Serializer]) -> None:
        super().bind(field_name, serializer_class)
        if self.method_name is None:
            self.method_name = f"get_{field_name}"
        if not callable(getattr(serializer_class, self.method_name, None)):
            raise ConfigurationError(
                f"{serializer_class.__name__}.{field_name}: no method {self.method_name}(self, obj)"
            )

    def to_representation(self, value: Any, serializer: Serializer) -> Any:
        assert self.method_name is not None  # set by bind
        return getattr(serializer, self.method_name)(value)
