"""JSON Schema for what views declare about their data: a serializer, an ``@endpoint(body=...)`` type.

The AsyncAPI document (`_asyncapi`) uses it. Only what a declaration states is described;
everything else gets the empty schema ``{}``, which accepts any value. The rule behind it: a
schema looser than the server leaves something out, a stricter one would be false, so when in
doubt (a custom field, a type the converter may structure its own way) the schema is looser.

A serializer class gives up to three component schemas, named the way drf-spectacular names
them (the class name without its ``Serializer`` suffix):

- ``User``: what the server writes, its readable fields, read-only ones marked ``readOnly``;
- ``UserRequest``: what a client sends to create or replace, its writable fields, ``required``
  as the serializer requires them, write-only ones marked ``writeOnly``;
- ``PatchedUserRequest``: the same with nothing required (a partial update).

A nested serializer is a component of its own, referenced with ``$ref``. An attrs body type
is described inline, its fields required when they have no default; its extra keys are
refused when the App's converter forbids them (the default converter does).

Serializers are imported only when a view declares one: `import trio_rest` must not load
SQLAlchemy, which the serializers need.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import types
import typing
import uuid
from collections.abc import Mapping
from typing import Any, Literal

import attrs

__all__ = ["Kind", "Schemas", "type_schema"]

#: Which of a serializer's schemas: what the server writes, or what a client sends in full
#: (``request``) or in part (``patch``).
Kind = Literal["reply", "request", "patch"]

# The string formats JSON Schema names for the types the converter writes as ISO text.
_FORMATS: dict[type, str] = {
    datetime.datetime: "date-time",
    datetime.date: "date",
    datetime.time: "time",
    uuid.UUID: "uuid",
}
_SCALARS: dict[type, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
_JSON_SCALARS = (str, int, float, bool, type(None))


class Schemas:
    """The component schemas one document collects, each serializer's once.

    Attributes:
        components: schema name -> schema, for ``components.schemas``.
    """

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}
        self._names: dict[type, str] = {}

    def serializer(self, cls: type, kind: Kind) -> dict[str, Any]:
        """Return a ``$ref`` to the schema of serializer `cls` for `kind`, adding it the first time.

        Args:
            cls: a `trio_rest.serializers.Serializer` subclass.
            kind: which of its schemas (see the module docstring).

        Returns:
            ``{"$ref": "#/components/schemas/<name>"}``.

        Raises:
            ConfigurationError: the serializer's fields are inconsistent (its first use).
        """
        base = self._names.get(cls)
        if base is None:
            stem = cls.__name__.removesuffix("Serializer") or cls.__name__
            base, n = stem, 1
            while base in self._names.values():  # two classes of one name, from two modules
                n += 1
                base = f"{stem}{n}"
            self._names[cls] = base
        name = {"reply": base, "request": f"{base}Request", "patch": f"Patched{base}Request"}[kind]
        if name not in self.components:
            self.components[name] = {}  # taken first: a serializer nested in itself refers back
            self.components[name] = self._object(cls, kind)
        return {"$ref": f"#/components/schemas/{name}"}

    def _object(self, cls: type, kind: Kind) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        required: list[str] = []
        for name, field in cls().fields.items():
            if field.write_only if kind == "reply" else field.read_only:
                continue
            schema = self._field(field, kind)
            if field.help_text:
                schema["description"] = str(field.help_text)
            if kind == "reply" and field.read_only:
                schema["readOnly"] = True
            elif kind != "reply" and field.write_only:
                schema["writeOnly"] = True
            if kind == "request" and field.required:
                required.append(name)
            properties[name] = schema
        out: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            out["required"] = required
        if cls.__doc__:
            out["description"] = cls.__doc__.strip()
        return out

    def _field(self, field: Any, kind: Kind) -> dict[str, Any]:
        """One field's schema (always a fresh dict: the caller adds keywords to it)."""
        from .serializers import HyperlinkedRelatedField, PrimaryKeyRelatedField
        from .serializers._fieldset import NestedField
        from .serializers._relations import ForeignKeyField

        if isinstance(field, NestedField):
            ref = self.serializer(field.serializer_class, "reply")
            schema: dict[str, Any] = {"type": "array", "items": ref} if field.many else {"allOf": [ref]}
        elif isinstance(field, PrimaryKeyRelatedField | HyperlinkedRelatedField):
            if isinstance(field, PrimaryKeyRelatedField):
                one = _key_schema(getattr(field, "_pk_type", None))
            else:
                one = {"type": "string", "format": "uri-reference"}
            if kind != "reply":  # aiorest-ws clients send {"id": 5} or {"url": ...}
                one = {"anyOf": [one, {"type": "object"}]}
            schema = {"type": "array", "items": one} if field.many else one
        elif isinstance(field, ForeignKeyField):
            schema = _key_schema(getattr(field, "_key_type", None))
        else:
            schema = _scalar_field(field, kind)
        return _nullable(schema) if field.allow_null else schema


def _scalar_field(field: Any, kind: Kind) -> dict[str, Any]:
    """The schema of the serializers' scalar and temporal fields; ``{}`` for any other."""
    from .serializers import (
        BooleanField,
        CharField,
        ChoiceField,
        DateField,
        DateTimeField,
        DecimalField,
        FloatField,
        IntegerField,
        TimeField,
        UUIDField,
    )

    schema: dict[str, Any]
    if isinstance(field, ChoiceField):  # EnumField included: its choices are the members' values
        values = list(field.choices)
        if kind != "reply" and field.allow_blank and "" not in values:
            values.append("")
        return {"enum": values} if all(isinstance(v, _JSON_SCALARS) for v in values) else {}
    if isinstance(field, BooleanField):
        return {"type": "boolean"}
    if isinstance(field, IntegerField | FloatField):
        schema = {"type": "integer" if isinstance(field, IntegerField) else "number"}
        if isinstance(field.min_value, int | float):
            schema["minimum"] = field.min_value
        if isinstance(field.max_value, int | float):
            schema["maximum"] = field.max_value
        return schema
    if isinstance(field, DecimalField):
        # Written as text by default (JSON numbers are binary floats); read from either.
        if kind != "reply":
            return {"type": ["string", "number"]}
        return {"type": "string", "format": "decimal"} if field.coerce_to_string else {"type": "number"}
    if isinstance(field, CharField):
        schema = {"type": "string"}
        if field.max_length is not None:
            schema["maxLength"] = field.max_length
        if field.min_length is not None:
            schema["minLength"] = field.min_length
        return schema
    for cls, python_type in (
        (DateTimeField, datetime.datetime),
        (DateField, datetime.date),
        (TimeField, datetime.time),
        (UUIDField, uuid.UUID),
    ):
        if isinstance(field, cls):
            return {"type": "string", "format": _FORMATS[python_type]}
    return {}


def _key_schema(python_type: type | None) -> dict[str, Any]:
    """A related object's key, written as the column's Python type is (UUIDs as text)."""
    if python_type is None:
        return {}
    return type_schema(python_type, forbid_extra_keys=False)


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema`, also accepting null."""
    kind = schema.get("type")
    if not schema:
        return schema  # already accepts anything
    if isinstance(kind, str):
        return {**schema, "type": [kind, "null"]}
    if isinstance(kind, list):
        return {**schema, "type": [*kind, "null"]} if "null" not in kind else schema
    if "enum" in schema:
        return {"enum": [*schema["enum"], None]}
    return {"anyOf": [schema, {"type": "null"}]}


def type_schema(tp: Any, *, forbid_extra_keys: bool, _seen: frozenset[type] = frozenset()) -> dict[str, Any]:
    """The JSON Schema of the values a Python type is structured from (an endpoint's body).

    Args:
        tp: an attrs class, a scalar, a date, time, UUID, decimal or enum type, or a
            ``list``, ``dict``, ``Union``, ``Optional`` or ``Literal`` of them.
        forbid_extra_keys: an attrs class refuses keys it does not declare (the App's
            converter says so).

    Returns:
        The schema; ``{}`` for a type it does not know (anything is then accepted).
    """
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is typing.Any:
        return {}
    if tp is None or tp is type(None):
        return {"type": "null"}
    if origin is Literal:
        return {"enum": list(args)} if all(isinstance(a, _JSON_SCALARS) for a in args) else {}
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [type_schema(a, forbid_extra_keys=forbid_extra_keys, _seen=_seen) for a in args]}
    if origin is not None:
        return _generic_schema(origin, args, forbid_extra_keys, _seen)
    if not isinstance(tp, type):
        return {}
    if attrs.has(tp):
        return _attrs_schema(tp, forbid_extra_keys, _seen)
    if issubclass(tp, enum.Enum):
        values = [member.value for member in tp]
        return {"enum": values} if all(isinstance(v, _JSON_SCALARS) for v in values) else {}
    for python_type, name in _SCALARS.items():
        if tp is python_type:
            return {"type": name}
    for python_type, text_format in _FORMATS.items():
        if tp is python_type:
            return {"type": "string", "format": text_format}
    if tp is decimal.Decimal:
        return {"type": ["string", "number"]}
    return {}


def _generic_schema(
    origin: Any, args: tuple[Any, ...], forbid_extra_keys: bool, seen: frozenset[type]
) -> dict[str, Any]:
    """``list[X]``, ``tuple[X, ...]``, ``set[X]``, ``dict[str, X]`` and their abstract forms."""
    if not isinstance(origin, type):
        return {}
    if issubclass(origin, Mapping):
        values = args[1] if len(args) == 2 else typing.Any
        item = type_schema(values, forbid_extra_keys=forbid_extra_keys, _seen=seen)
        return {"type": "object", "additionalProperties": item}
    if issubclass(origin, str | bytes):
        return {}
    if issubclass(origin, tuple) and not (len(args) == 2 and args[1] is Ellipsis):
        return {"type": "array"}  # a fixed-length tuple: its items' schemas are not worth the code
    element = args[0] if args else typing.Any
    return {"type": "array", "items": type_schema(element, forbid_extra_keys=forbid_extra_keys, _seen=seen)}


def _attrs_schema(cls: type, forbid_extra_keys: bool, seen: frozenset[type]) -> dict[str, Any]:
    if cls in seen:
        return {"type": "object"}  # a class that contains itself: described once, then open
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation naming what its module cannot resolve: fields stay open
        hints = {}
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in attrs.fields(cls):
        if not field.init:
            continue
        tp = hints.get(field.name, field.type if isinstance(field.type, type) else typing.Any)
        properties[field.name] = type_schema(tp, forbid_extra_keys=forbid_extra_keys, _seen=seen | {cls})
        if field.default is attrs.NOTHING:
            required.append(field.name)
    schema: dict[str, Any] = {"type": "object", "title": cls.__name__, "properties": properties}
    if required:
        schema["required"] = required
    if forbid_extra_keys:
        schema["additionalProperties"] = False
    return schema
