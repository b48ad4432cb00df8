"""How ModelSerializer turns a mapped class's columns and relationships into fields.

Everything here runs once per serializer class, when its fields are first
needed (mappers are configured by then).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Mapper, RelationshipDirection, RelationshipProperty
from sqlalchemy.orm.exc import UnmappedColumnError

from .._errors import ConfigurationError
from ._field import Field
from ._generic import ConverterField, JSONField, ReadOnlyField
from ._relations import (
    ForeignKeyField,
    HyperlinkedIdentityField,
    HyperlinkedRelatedField,
    PrimaryKeyRelatedField,
)
from ._scalars import (
    BooleanField,
    CharField,
    ChoiceField,
    DecimalField,
    EnumField,
    FloatField,
    IntegerField,
    UUIDField,
)
from ._temporal import DateField, DateTimeField, TimeField

if TYPE_CHECKING:
    from ._serializer import Serializer

__all__ = [
    "MetaOptions",
    "column_keys",
    "detail_view_name",
    "hyperlinked_field",
    "identity_field",
    "infer_field",
    "link_foreign_keys",
    "primary_key_field",
]

ALL_FIELDS: Final = "__all__"


def _int_bounds(bits: int) -> dict[str, Any]:
    return {"min_value": -(2 ** (bits - 1)), "max_value": 2 ** (bits - 1) - 1}


def _numeric(type_: Any) -> tuple[type[Field], dict[str, Any]]:
    if not type_.asdecimal:
        return FloatField, {}
    return DecimalField, {"max_digits": type_.precision, "decimal_places": type_.scale}


def _enum(type_: Any) -> tuple[type[Field], dict[str, Any]]:
    if type_.enum_class is not None:
        return EnumField, {"enum_class": type_.enum_class}
    return ChoiceField, {"choices": list(type_.enums)}


# Checked in order, so subclasses come before their bases: Enum is a String,
# BigInteger an Integer, Float a Numeric. Integer bounds follow the column
# type's width (PostgreSQL refuses 2**31 in an INTEGER column: a 500 if not
# caught here).
_TYPES: Final[tuple[tuple[type, Callable[[Any], tuple[type[Field], dict[str, Any]]]], ...]] = (
    (sa.Boolean, lambda t: (BooleanField, {})),
    (sa.Enum, _enum),
    (sa.SmallInteger, lambda t: (IntegerField, _int_bounds(16))),
    (sa.BigInteger, lambda t: (IntegerField, _int_bounds(64))),
    (sa.Integer, lambda t: (IntegerField, _int_bounds(32))),
    (sa.Float, lambda t: (FloatField, {})),
    (sa.Numeric, _numeric),
    (sa.String, lambda t: (CharField, {"max_length": t.length})),
    (sa.DateTime, lambda t: (DateTimeField, {"timezone": bool(t.timezone)})),
    (sa.Date, lambda t: (DateField, {})),
    (sa.Time, lambda t: (TimeField, {})),
    (sa.JSON, lambda t: (JSONField, {})),
    (sa.Uuid, lambda t: (UUIDField, {"as_uuid": t.as_uuid})),
)


def _type_field(column: sa.Column[Any]) -> tuple[type[Field], dict[str, Any]]:
    type_ = column.type
    # A TypeDecorator's Python values are its own, not its implementation's.
    if not isinstance(type_, sa.TypeDecorator):
        for base, build in _TYPES:
            if isinstance(type_, base):
                return build(type_)
    try:
        return ConverterField, {"python_type": type_.python_type}
    except NotImplementedError:
        return ReadOnlyField, {}


def _is_generated(column: sa.ColumnElement[Any]) -> bool:
    """True for columns the database fills itself: autoincrement keys, identities, computed."""
    if not isinstance(column, sa.Column):
        return True
    autoincrement = getattr(column.table, "autoincrement_column", None)
    return column is autoincrement or column.identity is not None or column.computed is not None


def _column_field_kwargs(columns: list[sa.ColumnElement[Any]]) -> tuple[type[Field], dict[str, Any]]:
    column = columns[0]
    if not isinstance(column, sa.Column):  # column_property(<SQL expression>)
        return ReadOnlyField, {}
    common: dict[str, Any] = {}
    if any(_is_generated(each) for each in columns):
        common["read_only"] = True
    else:
        if column.nullable:
            common.update(allow_null=True, required=False)
        if column.default is not None or column.server_default is not None:
            common["required"] = False
    if column.doc or column.comment:
        common["help_text"] = column.doc or column.comment
    if len(columns) == 1 and len(column.foreign_keys) == 1:
        return ForeignKeyField, {**common, "target": next(iter(column.foreign_keys)).column}
    field_class, kwargs = _type_field(column)
    # Text fields refuse "" by default, as in Django REST framework; a column
    # whose own default is "" says that blank is a legitimate value.
    default = column.default
    blank_default = getattr(default, "is_scalar", False) and getattr(default, "arg", None) == ""
    if field_class is CharField and blank_default:
        kwargs["allow_blank"] = True
    return field_class, {**kwargs, **common}


def _relationship_kwargs(relationship: RelationshipProperty[Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"many": relationship.uselist}
    if relationship.viewonly:
        kwargs["read_only"] = True
        return kwargs
    kwargs["queryset"] = relationship.mapper.class_
    if relationship.uselist:
        kwargs["required"] = False
    elif relationship.direction is RelationshipDirection.MANYTOONE:
        local = list(relationship.local_columns)
        if any(column.nullable for column in local):
            kwargs.update(allow_null=True, required=False)
        if any(column.default is not None or column.server_default is not None for column in local):
            kwargs["required"] = False
    else:  # the "one" side of a one-to-one: the other row holds the key
        kwargs.update(allow_null=True, required=False)
    return kwargs


def _make(field_class: type[Field], kwargs: dict[str, Any], extra: Mapping[str, Any], name: str) -> Field:
    kwargs = {**kwargs, **extra}
    # Inferred options give way to the explicit ones they contradict.
    if kwargs.get("read_only"):
        kwargs.pop("required", None)
        kwargs.pop("default", None)
    elif "default" in extra:
        kwargs.pop("required", None)
    try:
        return field_class(**kwargs)
    except TypeError as exc:
        raise ConfigurationError(f"field {name!r}: bad options for {field_class.__name__}: {exc}") from None


class MetaOptions:
    """A ModelSerializer's ``Meta``, checked.

    Raises:
        ConfigurationError: when ``model`` is missing or not mapped, or the
            options are malformed.
    """

    def __init__(self, serializer_class: type[Serializer]) -> None:
        meta = getattr(serializer_class, "Meta", None)
        model = getattr(meta, "model", None)
        name = serializer_class.__name__
        if model is None:
            raise ConfigurationError(f"{name}: Meta.model is required")
        try:
            self.mapper: Mapper[Any] = sa.inspect(model)
        except sa.exc.NoInspectionAvailable:
            raise ConfigurationError(f"{name}: Meta.model {model!r} is not a mapped class") from None
        self.model: type = model
        self.fields = getattr(meta, "fields", None)
        self.exclude = tuple(getattr(meta, "exclude", None) or ())
        if self.fields is not None and self.exclude:
            raise ConfigurationError(f"{name}: set Meta.fields or Meta.exclude, not both")
        if (
            self.fields is not None
            and self.fields != ALL_FIELDS
            and not isinstance(self.fields, list | tuple)
        ):
            raise ConfigurationError(f"{name}: Meta.fields must be a list or '__all__', not {self.fields!r}")
        self.read_only_fields = frozenset(getattr(meta, "read_only_fields", ()) or ())
        self.extra_kwargs: Mapping[str, Mapping[str, Any]] = getattr(meta, "extra_kwargs", None) or {}
        self.depth: int = getattr(meta, "depth", 0) or 0
        if not isinstance(self.depth, int) or not 0 <= self.depth <= 10:
            raise ConfigurationError(f"{name}: Meta.depth must be an int from 0 to 10")

    def all_names(self) -> list[str]:
        """What ``'__all__'`` means: the table's columns in order, then the relationships."""
        names = column_keys(self.mapper)
        # .keys(): iterating SQLAlchemy's Properties yields the properties.
        return names + [key for key in self.mapper.relationships.keys() if key not in names]  # noqa: SIM118

    def field_names(self, declared: Mapping[str, Any], all_names: list[str] | None = None) -> list[str]:
        """The serializer's field names in output order.

        ``Meta.fields`` order; or, for ``'__all__'`` (and when ``Meta`` names no
        fields, as aiorest-ws took it), the table's columns in order, then the
        relationships; less ``Meta.exclude``; then the declared fields not yet placed.

        Args:
            declared: the serializer's declared fields.
            all_names: what ``'__all__'`` stands for (default: `all_names`).

        Raises:
            ConfigurationError: for duplicates or unknown excluded names.
        """
        if isinstance(self.fields, list | tuple):
            names = list(self.fields)
            if len(set(names)) != len(names):
                raise ConfigurationError(f"{self.model.__name__}: Meta.fields lists a name twice")
        else:
            names = list(all_names) if all_names is not None else self.all_names()
        for name in self.exclude:
            if name not in names and name not in declared:
                raise ConfigurationError(f"Meta.exclude names {name!r}, which is not a field")
        names = [name for name in names if name not in self.exclude]
        names += [name for name in declared if name not in names and name not in self.exclude]
        return names


def column_keys(mapper: Mapper[Any]) -> list[str]:
    """The attribute keys of a mapper's table columns, in table order (inherited tables first)."""
    keys: dict[str, None] = {}
    for column in mapper.persist_selectable.columns:
        try:
            keys.setdefault(mapper.get_property_by_column(column).key)
        except UnmappedColumnError:
            continue
    return list(keys)


def detail_view_name(model: type) -> str:
    """The route name hyperlinks to `model` use by default: ``"<model>-detail"``, lower case."""
    return f"{model.__name__.lower()}-detail"


def primary_key_field(relationship: RelationshipProperty[Any], extra: Mapping[str, Any], name: str) -> Field:
    """A relationship's field in a `ModelSerializer`: its primary keys."""
    return _make(PrimaryKeyRelatedField, _relationship_kwargs(relationship), extra, name)


def hyperlinked_field(relationship: RelationshipProperty[Any], extra: Mapping[str, Any], name: str) -> Field:
    """A relationship's field in a `HyperlinkedModelSerializer`: the URLs of its ``-detail`` route."""
    model = relationship.mapper.class_
    kwargs = {"view_name": detail_view_name(model), **_relationship_kwargs(relationship)}
    return _make(HyperlinkedRelatedField, kwargs, extra, name)


def identity_field(options: MetaOptions, name: str) -> Field:
    """The ``url`` field of a `HyperlinkedModelSerializer`: the object's own ``-detail`` URL."""
    key = options.mapper.get_property_by_column(options.mapper.primary_key[0]).key
    kwargs = {"view_name": detail_view_name(options.model), "lookup_field": key}
    return _make(HyperlinkedIdentityField, kwargs, options.extra_kwargs.get(name, {}), name)


def infer_field(
    name: str,
    options: MetaOptions,
    nested: Callable[[type, int, bool], Field],
    related: Callable[[RelationshipProperty[Any], Mapping[str, Any], str], Field] = primary_key_field,
) -> Field:
    """Build the field for one name of ``Meta.fields`` from the model.

    Args:
        name: an attribute of the model.
        options: the checked Meta.
        nested: makes the read-only nested field of a related model
            (model, depth left, many).
        related: makes a relationship's field (relationship, its extra
            options, its name) when there is no depth.

    Returns:
        The field, with ``Meta.extra_kwargs`` and ``read_only_fields`` applied.

    Raises:
        ConfigurationError: when the model has no such attribute.
    """
    mapper = options.mapper
    extra = dict(options.extra_kwargs.get(name, {}))
    if name in options.read_only_fields:
        extra["read_only"] = True
    if name in mapper.relationships:
        relationship = mapper.relationships[name]
        if options.depth:
            return nested(relationship.mapper.class_, options.depth - 1, bool(relationship.uselist))
        return related(relationship, extra, name)
    if name in mapper.column_attrs:
        field_class, kwargs = _column_field_kwargs(list(mapper.column_attrs[name].columns))
        return _make(field_class, kwargs, extra, name)
    if hasattr(options.model, name):  # a property, hybrid or plain attribute
        extra.pop("read_only", None)
        return _make(ReadOnlyField, {}, extra, name)
    raise ConfigurationError(f"field name {name!r} is not valid for model {options.model.__name__}")


def link_foreign_keys(fields: Mapping[str, Field], mapper: Mapper[Any]) -> None:
    """Let primary key fields of many-to-one relationships read the local foreign key column.

    Representing ``address.user`` then needs ``address.user_id`` only, not
    a query for the user.
    """
    for name, field in fields.items():
        if not isinstance(field, PrimaryKeyRelatedField) or field.many:
            continue
        source = field.source or name
        relationship = mapper.relationships.get(source) if "." not in source else None
        if relationship is None or relationship.direction is not RelationshipDirection.MANYTOONE:
            continue
        pairs = relationship.local_remote_pairs or []
        target_pk = list(relationship.mapper.primary_key)
        if len(pairs) != 1 or target_pk != [pairs[0][1]]:
            continue
        try:
            field.local_key = mapper.get_property_by_column(pairs[0][0]).key
        except UnmappedColumnError:
            continue
