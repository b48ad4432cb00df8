"""What a serializer class computes once: its bound fields (`FieldSet`), and the cache that holds them.

Fields are built on first use rather than at class creation, because a
ModelSerializer's fields come from mappers that may not be configured yet
when the class body runs.
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, TypeVar

from ._field import Field

if TYPE_CHECKING:
    from ._serializer import Serializer

__all__ = ["BUILD_LOCK", "FieldSet", "NestedField", "class_cache", "plain_getter"]

# Builds are rare (once per class) but may race between worker threads; the
# lock is re-entrant because building one class may build a nested one.
BUILD_LOCK: Final = threading.RLock()

_T = TypeVar("_T")


def class_cache(cls: type, attr: str, build: Callable[[], _T]) -> _T:
    """Return ``cls.<attr>``, computing it with `build` once per class (not inherited).

    Args:
        cls: the serializer class.
        attr: where the result is kept on the class.
        build: computes the result.

    Returns:
        The cached result.
    """
    found = cls.__dict__.get(attr)
    if found is None:
        with BUILD_LOCK:
            found = cls.__dict__.get(attr)
            if found is None:
                found = build()
                setattr(cls, attr, found)
    return found


class FieldSet:
    """The bound fields of one serializer class, split the way the hot paths use them."""

    __slots__ = ("fields", "readable", "writable")

    def __init__(self, cls: type[Serializer], fields: dict[str, Field]) -> None:
        for name, field in fields.items():
            field.bind(name, cls)
        self.fields: Mapping[str, Field] = MappingProxyType(fields)
        # (name, a plain attribute getter or None, field): reading an object's
        # attribute through operator.attrgetter is the common case, and about
        # twice as fast as the general Field.get_attribute.
        self.readable = tuple(
            (field.field_name, plain_getter(field), field)
            for field in fields.values()
            if not field.write_only
        )
        # (field, name of its validate_<field> hook or None), resolved once.
        self.writable = tuple(
            (field, hook if callable(getattr(cls, hook, None)) else None)
            for field in fields.values()
            if not field.read_only
            for hook in (f"validate_{field.field_name}",)
        )


def plain_getter(field: Field) -> Callable[[Any], Any] | None:
    """A fast getter for a field that reads one plain attribute, or None when it does more."""
    if type(field).get_attribute is Field.get_attribute and len(field.source_attrs) == 1:
        return operator.attrgetter(field.source_attrs[0])
    return None


class NestedField(Field):
    """A serializer declared as a field of another: represents related objects (read-only)."""

    def __init__(self, serializer: Serializer) -> None:
        options = serializer._field_options
        super().__init__(read_only=True, **options)
        self.serializer_class = type(serializer)
        self.many = serializer.many

    def to_representation(self, value: Any, serializer: Serializer) -> Any:
        child = serializer._child(self)
        if self.many:
            return [child.to_representation(item) for item in value]
        return child.to_representation(value)
